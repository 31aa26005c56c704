"""Lambda function `scheduler`: the EventBridge tick that settles every run whose timer is due."""

from straitruns.entry import schedule_handler

handler = schedule_handler()
