"""The confirm page an alert's link opens: GET shows, only POST acknowledges."""
