"""rnn-tui's engine: the RNN from scratch of d2l chapter 8.5, in pure PyTorch.

It never imports the UI. The app, the headless command, the tests and the benchmarks all
use the same pieces: corpus and data (engine.corpus, engine.data), the cells (engine.cells:
RNN 8.5, GRU 9.1, LSTM 9.2), the model (engine.model, engine.fast), training (engine.train,
engine.trainer), generation (engine.generate).
"""

__version__ = "0.1.0"
