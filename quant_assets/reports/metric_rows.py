"""The report figures tables show, in order: label, EvalReport field, format."""

from typing import Final

METRIC_ROWS: Final[tuple[tuple[str, str, str], ...]] = (
    ("total return", "total_return", "{:.2%}"),
    ("CAGR", "cagr", "{:.2%}"),
    ("annualized volatility", "annualized_volatility", "{:.2%}"),
    ("Sharpe", "sharpe", "{:.2f}"),
    ("Sortino", "sortino", "{:.2f}"),
    ("Calmar", "calmar", "{:.2f}"),
    ("max drawdown", "max_drawdown", "{:.2%}"),
    ("max drawdown duration (bars)", "max_drawdown_duration_bars", "{:d}"),
    ("trades", "trades", "{:d}"),
    ("win rate", "win_rate", "{:.1%}"),
    ("profit factor", "profit_factor", "{:.2f}"),
    ("average trade return", "average_trade_return", "{:.3%}"),
    ("exposure", "exposure", "{:.1%}"),
    ("turnover (annual)", "turnover", "{:.2f}"),
    ("fees paid", "fees_paid", "{:,.2f}"),
    ("probabilistic Sharpe", "probabilistic_sharpe", "{:.3f}"),
    ("deflated Sharpe", "deflated_sharpe", "{:.3f}"),
    ("bars", "bars", "{:d}"),
)
"""Every EvalReport figure a tear sheet or the CLI prints, with its label and format."""
