-- Languages (issue 12): ``language`` follows the customer's Telegram language
-- code (refreshed on /start); ``chosen_language`` is what they picked with
-- /language or the 🌐 button, and wins over it. NULL: never chosen.
ALTER TABLE users ADD COLUMN chosen_language TEXT;
CREATE INDEX users_chosen_language ON users (chosen_language) WHERE chosen_language IS NOT NULL;
