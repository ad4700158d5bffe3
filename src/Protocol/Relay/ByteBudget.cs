namespace MoEMesh.Protocol.Relay;

/// <summary>
/// A token bucket of bytes shared by every circuit of a relay: it fills at <c>bytesPerSecond</c> up to one
/// second's worth, and a copy that finds it short waits (on the injected clock) until enough has come.
/// Waiters take their turn one at a time, so a large copy is not starved by small ones.
/// </summary>
internal sealed class ByteBudget(long bytesPerSecond, TimeProvider time) : IDisposable
{
    private readonly SemaphoreSlim _turn = new(1, 1);
    private double _available = bytesPerSecond;
    private long _filledAt = time.GetTimestamp();

    public async ValueTask TakeAsync(int bytes, CancellationToken cancellationToken)
    {
        await _turn.WaitAsync(cancellationToken);
        try
        {
            Fill();
            if (_available < bytes)
            {
                await Task.Delay(TimeSpan.FromSeconds((bytes - _available) / bytesPerSecond), time, cancellationToken);
                Fill();
            }
            _available -= bytes;
        }
        finally
        {
            _turn.Release();
        }
    }

    private void Fill()
    {
        long now = time.GetTimestamp();
        _available = Math.Min(bytesPerSecond, _available + time.GetElapsedTime(_filledAt, now).TotalSeconds * bytesPerSecond);
        _filledAt = now;
    }

    public void Dispose() => _turn.Dispose();
}
