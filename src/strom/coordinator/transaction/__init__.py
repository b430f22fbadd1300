"""The transaction coordinator: transactional ids as a fold over `__transaction_state`."""
