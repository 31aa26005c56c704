"""Lambda function `dispatcher`: claims runs from the SQS run queue and calls their job endpoints."""

from straitruns.entry import sqs_dispatch_handler

handler = sqs_dispatch_handler()
