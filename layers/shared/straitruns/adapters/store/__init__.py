"""The DynamoDB store: the only code that talks to DynamoDB (see docs/data-model.md)."""
