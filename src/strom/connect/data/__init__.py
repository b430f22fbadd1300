"""Connect's data model: schemas, structs, headers and the logical types."""
