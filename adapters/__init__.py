"""Platform adapters: each turns its platform's events into IncomingMessage and knows how
to post, edit and stream there. Adapters never import each other."""
