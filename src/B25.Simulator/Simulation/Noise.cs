namespace B25.Simulator.Simulation;

/// <summary>Small random helpers: the simulator needs plausible numbers, not statistics.</summary>
internal static class Noise
{
    public static double Gaussian(this Random random)
    {
        // Box-Muller; 1 - NextDouble() keeps the logarithm finite.
        var u1 = 1.0 - random.NextDouble();
        var u2 = random.NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
    }

    /// <summary>A log-normal sample with the given median; spread is the sigma of the log.</summary>
    public static double LogNormal(this Random random, double median, double spread) =>
        median * Math.Exp(spread * random.Gaussian());

    public static double Between(this Random random, double min, double max) =>
        min + (random.NextDouble() * (max - min));

    /// <summary>
    /// How many events happen in <paramref name="seconds"/> at <paramref name="perSecond"/>, with jitter;
    /// fractions are carried so that low rates still produce events over time.
    /// </summary>
    public static int Events(this Random random, double perSecond, double seconds, ref double carry)
    {
        var expected = (perSecond * seconds * random.Between(0.8, 1.2)) + carry;
        var whole = Math.Floor(expected);
        carry = expected - whole;
        return (int)whole;
    }
}

/// <summary>
/// A gauge value that drifts around a mean and is pulled back towards it (a discrete
/// Ornstein-Uhlenbeck walk), clamped to a plausible band.
/// </summary>
internal sealed class Wander
{
    private readonly double _mean;
    private readonly double _sigma;
    private readonly double _min;
    private readonly double _max;
    private readonly double _pull;

    public Wander(double mean, double sigma, double min, double max, double pull = 0.3)
    {
        (_mean, _sigma, _min, _max, _pull) = (mean, sigma, min, max, pull);
        Value = mean;
    }

    public double Value { get; private set; }

    public double Next(Random random, double seconds, double? target = null, double? pullOverride = null)
    {
        var goal = target ?? _mean;
        var k = Math.Min(1.0, (pullOverride ?? _pull) * seconds);
        Value += (k * (goal - Value)) + (_sigma * Math.Sqrt(seconds) * random.Gaussian());
        var low = target is { } t1 ? Math.Min(_min, t1) : _min;
        var high = target is { } t2 ? Math.Max(_max, t2) : _max;
        Value = Math.Clamp(Value, low, high);
        return Value;
    }
}

/// <summary>
/// Marks exactly a given share of events, evenly spaced (an error-diffusion counter). Ratios that
/// alerts watch (5xx share, win rate, maker share, rejections) then hold over any window, even a
/// short one at the start of a run, where coin flips would trip the alert by chance.
/// </summary>
internal sealed class Cadence(double share)
{
    private double _credit;

    public bool Next()
    {
        _credit += share;
        if (_credit < 1)
        {
            return false;
        }

        _credit -= 1;
        return true;
    }
}
