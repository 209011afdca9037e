"""The speech engine shared by the Telegram voice notes and the phone hotline: audio, recognition, synthesis."""
