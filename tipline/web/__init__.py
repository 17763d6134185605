"""HTTP, one blueprint per audience (sms and voice webhooks, the report form, staff admin, ack
links, ops). Views only translate HTTP to the domain and back.
"""
