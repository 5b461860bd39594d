"""Boot entry point: run the terminal application on whichever board this is."""
import board
from firmware import app

app.run(board)
