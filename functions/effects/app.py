"""Lambda function `effects`: drives the effects of run status changes from the table's stream."""

from straitruns.entry import stream_effects_handler

handler = stream_effects_handler()
