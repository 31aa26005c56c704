"""Adapters at the edge: the DynamoDB store, the SQS queue, tokens, the clock, ids."""
