"""Presentation: console summaries now; plots and the HTML report with the evaluation issue."""
