"""OneWindow's Telegram channel: a python-telegram-bot 22 Application in front of the Rasa server."""
