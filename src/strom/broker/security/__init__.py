"""Authentication of client connections: TLS listeners and SASL, under Kafka's configs.

`listener` resolves what one listener needs (its security protocol, TLS context, SASL
mechanisms and users); `tls` builds the `ssl.SSLContext` from Kafka's `ssl.*` names;
`principal` turns a client certificate into a principal (`ssl.principal.mapping.rules`);
`authenticator` is Kafka's per-connection SASL state machine; `plain` and `scram` are the
mechanisms; `jaas` reads the JAAS text that holds PLAIN users; `credentials` is Kafka's
SCRAM credential format, kept in the metadata store.
"""
