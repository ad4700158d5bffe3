using System.Diagnostics.Metrics;
using MoEMesh.Dht.Lookup;

namespace MoEMesh.Dht.Node;

/// <summary>The node's DHT instruments (meter "MoEMesh.Dht"), tagged by operation: get, store, bootstrap, refresh.</summary>
internal sealed class DhtMetrics : IDisposable
{
    /// <summary>Name of the meter.</summary>
    public const string MeterName = "MoEMesh.Dht";

    private readonly Meter _meter;
    private readonly bool _ownsMeter;
    private readonly Histogram<int> _rounds;
    private readonly Histogram<int> _rpcs;
    private readonly Counter<long> _rpcFailures;
    private readonly Counter<long> _republished;

    public DhtMetrics(IMeterFactory? factory)
    {
        _ownsMeter = factory is null;
        _meter = factory?.Create(MeterName) ?? new Meter(MeterName);
        _rounds = _meter.CreateHistogram("moemesh.dht.lookup.rounds", "{round}", "Hops from the asking node to the node that ended a key's lookup", tags: null,
            new InstrumentAdvice<int> { HistogramBucketBoundaries = [0, 1, 2, 3, 4, 5, 6, 8, 10, 15, 20] });
        _rpcs = _meter.CreateHistogram("moemesh.dht.lookup.rpcs", "{rpc}", "Find RPCs that carried one key during its lookup", tags: null,
            new InstrumentAdvice<int> { HistogramBucketBoundaries = [0, 1, 2, 4, 8, 16, 32, 64, 128, 256] });
        _rpcFailures = _meter.CreateCounter<long>("moemesh.dht.rpc.failures", "{rpc}", "DHT RPCs that timed out or could not reach the peer");
        _republished = _meter.CreateCounter<long>("moemesh.dht.republished", "{record}", "Records this node republished that reached at least one of the nodes nearest their keys");
    }

    public void Lookup(string operation, LookupResult result)
    {
        var tag = new KeyValuePair<string, object?>("operation", operation);
        _rounds.Record(result.Rounds, tag);
        _rpcs.Record(result.Rpcs, tag);
    }

    public void RpcFailed() => _rpcFailures.Add(1);

    public void Republished(int records) => _republished.Add(records);

    public void Dispose()
    {
        if (_ownsMeter) _meter.Dispose();
    }
}
