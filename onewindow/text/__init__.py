"""Plain-language wording: dates and times, lists, channel-aware prompts and typo tolerance."""
