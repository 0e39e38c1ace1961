"""Backtest metrics: bar returns, drawdowns, the Sharpe family (PSR, DSR) and the EvalReport.

`compute_report` runs inside every backtest of a parameter search, so the curve is read by a few
compiled passes (`quant_assets.backtest.metrics_kernels`) over zero-copy views of the polars
columns: about 3 ms for a million bars and their trades.

Sources: Bailey & Lopez de Prado, "The Sharpe Ratio Efficient Frontier" (2012, PSR) and
"The Deflated Sharpe Ratio" (2014, DSR and the expected maximum Sharpe of N trials).
"""

import math
from statistics import NormalDist
from typing import Final

import numpy as np
import polars as pl

from quant_assets.backtest.metrics_kernels import return_statistics, scan_equity
from quant_assets.backtest.ratios import capped_ratio, clip_ratio, compound_annual_growth
from quant_assets.domain.arrays import FloatArray
from quant_assets.domain.errors import BacktestInputError
from quant_assets.domain.market import AssetClass, Timeframe
from quant_assets.domain.report import EvalReport

EULER_MASCHERONI: Final = 0.5772156649015329
EQUITY_COLUMNS: Final = ("ts", "equity", "exposure")
TRADE_COLUMNS: Final = ("qty", "entry_price", "exit_price", "pnl", "fees", "return_rate")
CRYPTO_DAYS_PER_YEAR: Final = 365
EQUITY_SESSIONS_PER_YEAR: Final = 252
EQUITY_SESSION_SECONDS: Final = 6.5 * 3600  # NYSE/Nasdaq regular session, 09:30-16:00
_SECONDS_PER_DAY: Final = 86400
_STANDARD_NORMAL: Final = NormalDist()


def annualization_factor(timeframe: Timeframe, asset_class: AssetClass) -> float:
    """Return the number of bars per year used to annualize returns.

    Crypto trades around the clock: 365 days of bars (8760 for 1h). Equities trade 252 sessions
    a year: 252 for 1d, 252 / N for Nd, and for intraday bars 252 times the bars that cover a
    6.5-hour session (a partial last bar counts, as vendors deliver it: 7 for 1h, 390 for 1m).

    Args:
        timeframe: Bar length.
        asset_class: Calendar family of the instrument.

    Returns:
        Bars per year, the periods_per_year argument of compute_report.
    """
    if asset_class is AssetClass.CRYPTO:
        return CRYPTO_DAYS_PER_YEAR * _SECONDS_PER_DAY / timeframe.seconds
    if timeframe.is_intraday:
        return float(
            EQUITY_SESSIONS_PER_YEAR * math.ceil(EQUITY_SESSION_SECONDS / timeframe.seconds)
        )
    return EQUITY_SESSIONS_PER_YEAR * _SECONDS_PER_DAY / timeframe.seconds


def per_bar_returns(equity: pl.DataFrame, *, initial_cash: float) -> pl.DataFrame:
    """Return the simple return of equity on each bar, the first bar measured from initial cash.

    After a bar whose equity is zero or negative (a ruined account) the return has no base and
    is defined as 0.0.

    Args:
        equity: Equity frame (ts, equity, exposure) from the engine.
        initial_cash: Account value before the first bar.

    Returns:
        A frame with columns ts and bar_return.

    Raises:
        BacktestInputError: if the frame or initial_cash breaks the input contract.
    """
    curve = scan_equity(equity, initial_cash)
    return pl.DataFrame({"ts": equity["ts"], "bar_return": curve.returns})


def drawdown_curve(equity: pl.DataFrame, *, initial_cash: float | None = None) -> pl.DataFrame:
    """Return each bar's drawdown: equity / running peak - 1 (zero at a peak, negative below).

    Args:
        equity: Equity frame (ts, equity, exposure) from the engine.
        initial_cash: If given, the account value before the first bar, which counts as the
            first peak (a first bar below it is already in drawdown).

    Returns:
        A frame with columns ts and drawdown.

    Raises:
        BacktestInputError: if the frame or initial_cash breaks the input contract.
    """
    values = scan_equity(equity, initial_cash).values
    start = values[0] if initial_cash is None else initial_cash
    drawdown = values / _running_peak(values, start) - 1.0
    return pl.DataFrame({"ts": equity["ts"], "drawdown": drawdown})


def probabilistic_sharpe_ratio(
    sharpe_per_period: float,
    n_obs: int,
    skew: float,
    kurtosis: float,
    benchmark: float = 0.0,
) -> float:
    """Return the probability that the true Sharpe ratio exceeds the benchmark (PSR).

    PSR = Phi((SR - SR*) * sqrt(n - 1) / sqrt(1 - skew * SR + (kurtosis - 1) / 4 * SR^2)),
    Bailey & Lopez de Prado (2012), eq. 11. The square-root term is the standard error of the
    Sharpe estimator for non-normal iid returns; it cannot be negative for sample moments, and if
    rounding makes it zero the answer is 1.0 when SR > SR* and 0.0 otherwise.

    Args:
        sharpe_per_period: Estimated Sharpe ratio, not annualized (mean / std of bar returns).
        n_obs: Number of returns the estimate uses (at least 2).
        skew: Skewness of the returns.
        kurtosis: Kurtosis of the returns, not excess (3 for a normal distribution).
        benchmark: Sharpe ratio to beat, per period (SR*).

    Returns:
        A probability in [0, 1].

    Raises:
        BacktestInputError: if n_obs < 2 or an input is not finite.
    """
    _require_finite(
        sharpe_per_period=sharpe_per_period, skew=skew, kurtosis=kurtosis, benchmark=benchmark
    )
    if n_obs < 2:
        raise BacktestInputError(
            f"n_obs was {n_obs}; a Sharpe ratio's standard error needs at least 2 returns"
        )
    variance_term = 1.0 - skew * sharpe_per_period + (kurtosis - 1.0) / 4.0 * sharpe_per_period**2
    if variance_term <= 0.0:
        return 1.0 if sharpe_per_period > benchmark else 0.0
    z = (sharpe_per_period - benchmark) * math.sqrt(n_obs - 1) / math.sqrt(variance_term)
    return _STANDARD_NORMAL.cdf(z)


def expected_max_sharpe(n_trials: int, sharpe_variance: float) -> float:
    """Return the expected maximum of n_trials Sharpe estimates whose true Sharpe is zero.

    E[max SR] = sqrt(V) * ((1 - g) * Z^-1(1 - 1/N) + g * Z^-1(1 - 1/(N e))), with g the
    Euler-Mascheroni constant (the False Strategy theorem, Bailey & Lopez de Prado 2014, eq. 2).
    One trial has nothing to select from, so its expected maximum is the mean, 0.0.

    Args:
        n_trials: Number of independent configurations tried (at least 1).
        sharpe_variance: Variance of the trials' Sharpe estimates, in the same (per-period)
            units as the Sharpe the result is compared with.

    Returns:
        The expected best Sharpe ratio of pure-noise trials, per period.

    Raises:
        BacktestInputError: if n_trials < 1 or sharpe_variance is negative or not finite.
    """
    if n_trials < 1:
        raise BacktestInputError(
            f"n_trials was {n_trials}; at least one trial produced the strategy, pass 1 or more"
        )
    if not math.isfinite(sharpe_variance) or sharpe_variance < 0.0:
        raise BacktestInputError(
            f"sharpe_variance was {sharpe_variance}; a variance must be finite and >= 0"
        )
    if n_trials == 1:
        return 0.0
    # Z^-1(1 - p) = -Z^-1(p) stays accurate for huge N, where 1 - 1/N would round to 1.
    expected_max_z = -(1.0 - EULER_MASCHERONI) * _STANDARD_NORMAL.inv_cdf(
        1.0 / n_trials
    ) - EULER_MASCHERONI * _STANDARD_NORMAL.inv_cdf(1.0 / (n_trials * math.e))
    return math.sqrt(sharpe_variance) * expected_max_z


def deflated_sharpe_ratio(
    sharpe_per_period: float,
    n_obs: int,
    skew: float,
    kurtosis: float,
    n_trials: int,
    sharpe_variance: float | None = None,
) -> float:
    """Return the PSR against the best Sharpe expected from n_trials skill-less trials (DSR).

    DSR = PSR(SR* = expected_max_sharpe(n_trials, V)), Bailey & Lopez de Prado (2014), eq. 1-2.
    When the trials' Sharpe variance V is unknown (only their number is), V defaults to
    1 / (n_obs - 1): the variance of a Sharpe estimate over n_obs returns when the true Sharpe
    is zero, which is the False Strategy theorem's null (every trial is noise). Trials whose true
    Sharpes differ scatter more, so pass the measured variance when the search recorded it.

    Args:
        sharpe_per_period: Estimated Sharpe ratio of the selected trial, not annualized.
        n_obs: Number of returns the estimate uses (at least 2).
        skew: Skewness of the returns.
        kurtosis: Kurtosis of the returns, not excess.
        n_trials: Number of independent configurations tried (at least 1).
        sharpe_variance: Variance of the trials' per-period Sharpe estimates, if known.

    Returns:
        A probability in [0, 1]; equal to the PSR for one trial and falling as trials grow.

    Raises:
        BacktestInputError: if an input is out of range (see the two functions it combines).
    """
    if n_obs < 2:
        raise BacktestInputError(
            f"n_obs was {n_obs}; a Sharpe ratio's standard error needs at least 2 returns"
        )
    variance = 1.0 / (n_obs - 1) if sharpe_variance is None else sharpe_variance
    benchmark = expected_max_sharpe(n_trials, variance)
    return probabilistic_sharpe_ratio(sharpe_per_period, n_obs, skew, kurtosis, benchmark)


def compute_report(
    equity: pl.DataFrame,
    trades: pl.DataFrame,
    *,
    initial_cash: float,
    periods_per_year: float,
    n_trials: int = 1,
    trial_sharpe_variance: float | None = None,
) -> EvalReport:
    """Compute every EvalReport metric from an equity curve and its trades.

    Definitions (r = per_bar_returns, n = bars, ppy = periods_per_year, risk-free rate 0):
    - total_return = final equity / initial_cash - 1; cagr = (1 + total_return)^(ppy / n) - 1,
      -1.0 when final equity <= 0.
    - annualized_volatility = std(r, ddof=1) * sqrt(ppy); sharpe = mean(r) / std(r, ddof=1) *
      sqrt(ppy); sortino = mean(r) / sqrt(mean(min(r, 0)^2)) * sqrt(ppy); calmar = cagr /
      |max_drawdown|.
    - max_drawdown = min(equity / running peak - 1), the peak starting at initial_cash.
      A drawdown spell runs from a peak to the first bar back at or above it (recovery) or to the
      last bar; max_drawdown_duration_bars and _seconds are the longest spell in each unit (equity
      rows are marked at their ts; initial cash one bar spacing, ts[1] - ts[0], before ts[0]).
    - win_rate = share of trades with pnl > 0; profit_factor = sum(pnl > 0) / |sum(pnl < 0)|;
      average_trade_return = mean(return_rate); fees_paid = sum(fees).
    - exposure = share of bars with a non-zero exposure; turnover = sum over trades of
      |qty| * (entry_price + exit_price) / mean(equity) / (n / ppy).
    - skewness, kurtosis = population moments of r (kurtosis not excess); probabilistic_sharpe
      = PSR of the per-period Sharpe against 0; deflated_sharpe = DSR over n_trials.

    Degenerate cases: fewer than 2 bars or zero return variance -> volatility, sharpe,
    skewness 0.0, kurtosis 3.0 (normal), PSR and DSR 0.0 (no risk taken, no evidence of skill);
    no trades -> win_rate, profit_factor, average_trade_return, turnover, fees_paid 0.0. A ratio
    with a zero denominator is 0.0 when its numerator is 0 and +/-RATIO_CAP otherwise (sortino
    without a losing bar, calmar without a drawdown, profit_factor without a losing trade);
    every ratio and cagr is clipped to +/-RATIO_CAP so the report stays finite JSON.

    Args:
        equity: Equity frame: ts Datetime UTC (sorted), equity Float64, exposure Float64.
        trades: Trades frame with at least TRADE_COLUMNS; may have zero rows.
        initial_cash: Account value before the first bar (> 0).
        periods_per_year: Bars per year: 24 * 365 for 1h crypto, 252 for daily equities.
        n_trials: Number of configurations tried to select this one (for the DSR).
        trial_sharpe_variance: Variance of the trials' per-period Sharpe ratios, if the search
            recorded them (annualized variance / periods_per_year); see deflated_sharpe_ratio.

    Returns:
        The frozen report.

    Raises:
        BacktestInputError: if a frame or argument breaks the input contract.
    """
    curve = scan_equity(equity, initial_cash)
    _check_arguments(periods_per_year, n_trials, trial_sharpe_variance)
    stats = return_statistics(curve.returns)
    drawdown = curve.drawdown
    n_bars = len(curve.values)
    years = n_bars / periods_per_year
    total_return = float(curve.values[-1]) / initial_cash - 1.0
    cagr = compound_annual_growth(total_return, years)
    root_ppy = math.sqrt(periods_per_year)
    sharpe_per_period, psr, dsr = 0.0, 0.0, 0.0
    if stats.std > 0.0:
        sharpe_per_period = stats.mean / stats.std
        moments = (n_bars, stats.skewness, stats.kurtosis)
        psr = probabilistic_sharpe_ratio(sharpe_per_period, *moments)
        dsr = deflated_sharpe_ratio(sharpe_per_period, *moments, n_trials, trial_sharpe_variance)
    return EvalReport(
        start=equity["ts"][0],
        end=equity["ts"][-1],
        bars=n_bars,
        periods_per_year=periods_per_year,
        total_return=total_return,
        cagr=cagr,
        annualized_volatility=stats.std * root_ppy,
        sharpe=clip_ratio(sharpe_per_period * root_ppy),
        sortino=capped_ratio(stats.mean * root_ppy, stats.downside_deviation),
        calmar=capped_ratio(cagr, abs(drawdown.max_drawdown)),
        max_drawdown=drawdown.max_drawdown,
        max_drawdown_duration_bars=drawdown.duration_bars,
        max_drawdown_duration_seconds=drawdown.duration_seconds,
        exposure=float(curve.exposed_bars) / n_bars,
        probabilistic_sharpe=psr,
        deflated_sharpe=dsr,
        n_trials=n_trials,
        skewness=stats.skewness,
        kurtosis=stats.kurtosis,
        **_trade_stats(trades, mean_equity=curve.mean_equity, years=years),
    )


def annualized_sharpe(returns: FloatArray, periods_per_year: float) -> float:
    """Return the annualized Sharpe ratio of bar returns exactly as `compute_report` does.

    For callers that hold the bar returns already (the parameter grid's summaries).

    Args:
        returns: Bar returns (see `per_bar_returns`), at least one.
        periods_per_year: Bars per year.

    Returns:
        mean / std(ddof=1) * sqrt(periods_per_year), 0.0 without spread, clipped to RATIO_CAP.
    """
    stats = return_statistics(returns)
    if not stats.std > 0.0:
        return 0.0
    return clip_ratio(stats.mean / stats.std * math.sqrt(periods_per_year))


def _check_arguments(
    periods_per_year: float, n_trials: int, trial_sharpe_variance: float | None
) -> None:
    if not math.isfinite(periods_per_year) or periods_per_year <= 0.0:
        raise BacktestInputError(
            f"periods_per_year was {periods_per_year}; pass the bars per year, e.g. 8760 for 1h "
            "crypto or 252 for daily equities"
        )
    # Validates n_trials and the variance even when a flat curve never reaches the DSR.
    expected_max_sharpe(n_trials, 0.0 if trial_sharpe_variance is None else trial_sharpe_variance)


def _running_peak(values: FloatArray, start: float) -> FloatArray:
    peak = np.maximum.accumulate(values)
    # The running peak is sorted, so only a prefix can sit below the starting value.
    peak[: int(np.searchsorted(peak, start))] = start
    return peak


def _trade_stats(
    trades: pl.DataFrame, *, mean_equity: float, years: float
) -> dict[str, float | int]:
    missing = [name for name in TRADE_COLUMNS if name not in trades.columns]
    if missing:
        raise BacktestInputError(
            f"trades frame lacks columns {missing} (it has {trades.columns}); the engine must "
            f"return at least {list(TRADE_COLUMNS)}"
        )
    nulls = {name: trades[name].null_count() for name in TRADE_COLUMNS}
    if any(nulls.values()):
        raise BacktestInputError(f"trades frame has nulls {nulls}; every closed trade needs values")
    if trades.height == 0:
        return {
            "win_rate": 0.0,
            "profit_factor": 0.0,
            "trades": 0,
            "average_trade_return": 0.0,
            "turnover": 0.0,
            "fees_paid": 0.0,
        }
    column = {name: trades[name].cast(pl.Float64).to_numpy() for name in TRADE_COLUMNS}
    pnl = column["pnl"]
    gross_profit = float(pnl[pnl > 0.0].sum())
    gross_loss = -float(pnl[pnl < 0.0].sum())
    notional = float(np.dot(np.abs(column["qty"]), column["entry_price"] + column["exit_price"]))
    turnover = notional / mean_equity / years if mean_equity > 0.0 else 0.0
    return {
        "win_rate": float(np.count_nonzero(pnl > 0.0)) / len(pnl),
        "profit_factor": capped_ratio(gross_profit, gross_loss),
        "trades": len(pnl),
        "average_trade_return": float(column["return_rate"].mean()),
        "turnover": clip_ratio(turnover),
        "fees_paid": float(column["fees"].sum()),
    }


def _require_finite(**values: float) -> None:
    bad = {name: value for name, value in values.items() if not math.isfinite(value)}
    if bad:
        raise BacktestInputError(f"{bad} must be finite; check the returns they came from")
