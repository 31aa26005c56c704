"""The local stack: the table and queues read from template.yaml, and the engines that serve them."""
