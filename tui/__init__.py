"""rnn-tui's user interface: the Textual app and the `rnn-tui` command. It reads the engine's
snapshots and events and sends commands back; it never touches the model directly."""
