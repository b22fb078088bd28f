"""Clients for the systems that fulfil orders, webhook signing, and a simulator that imitates them."""
