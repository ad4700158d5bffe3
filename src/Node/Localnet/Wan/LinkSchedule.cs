namespace MoEMesh.Node.Localnet.Wan;

/// <summary>
/// Decides, packet by packet, when a link of a given <see cref="LinkShape"/> lets each packet go, or that
/// it loses it. Packets leave in the order they came, as on a real link: one whose jittered time falls
/// before its predecessor's leaves right after it (TCP would read reordering as loss).
/// </summary>
internal sealed class LinkSchedule(LinkShape shape, Random random)
{
    private TimeSpan _previous = TimeSpan.MinValue;

    /// <summary>
    /// When a packet queued at <paramref name="now"/> leaves, or null when the link loses it; both are times
    /// on a monotonic clock (since the link started), which a step of the wall clock does not move.
    /// </summary>
    public TimeSpan? Release(TimeSpan now)
    {
        if (shape.Loss > 0 && random.NextDouble() < shape.Loss) return null;
        var at = now + shape.Delay + shape.Jitter * (2 * random.NextDouble() - 1);
        if (at < _previous) at = _previous;
        _previous = at;
        return at;
    }
}
