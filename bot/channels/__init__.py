"""Channel helpers run from the app side: status, the Telegram forwarder."""
