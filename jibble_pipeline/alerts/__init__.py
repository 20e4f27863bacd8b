"""The daily operations alert: yesterday's problems per client group (``problems``), as one
message (``message``) emailed to the operations team and posted to a Slack or Teams
incoming webhook (``jibble_pipeline.delivery``), each recipient once per day through the
``sent_alerts`` log (``sending``)."""
