using System.Diagnostics.Metrics;
using MoEMesh.Node.Hosting;

namespace MoEMesh.Node.Serving;

/// <summary>The node's instruments (meter "MoEMesh.Node"); the DHT adds its own ("MoEMesh.Dht").</summary>
internal sealed class NodeMetrics
{
    /// <summary>Name of the meter.</summary>
    public const string MeterName = "MoEMesh.Node";

    private readonly Histogram<double> _callDuration;
    private readonly Histogram<double> _queryDuration;

    public NodeMetrics(IMeterFactory factory, MeshNode node)
    {
        var meter = factory.Create(MeterName);
        _callDuration = meter.CreateHistogram<double>("moemesh.node.expert_call.duration", "ms", "Expert calls served, from arrival to answer");
        meter.CreateObservableGauge("moemesh.node.expert.queue_depth",
            () => node.Experts.Values.Select(e => new Measurement<int>(e.Load.QueueDepth, new KeyValuePair<string, object?>("expert", e.Uid.Value))),
            "{request}", "Expert calls accepted and not yet answered");
        meter.CreateObservableGauge("moemesh.node.expert.updates",
            () => node.Experts.Values.Select(e => new Measurement<long>(e.Backend.UpdateCount, new KeyValuePair<string, object?>("expert", e.Uid.Value))),
            "{step}", "Optimizer steps applied to each hosted expert");
        _queryDuration = meter.CreateHistogram<double>("moemesh.node.query.duration", "ms", "Queries answered, from arrival to answer, by model and HTTP status");
        meter.CreateObservableCounter("moemesh.routing.incompatible_hosts.skipped", () => node.MixtureFactory?.Incompatible.Skipped ?? 0, "{host}",
            "Times a host was skipped because it announces another expert type or schema than the layer needs");
        meter.CreateObservableCounter("moemesh.routing.audits", () => node.Health?.Audits ?? 0, "{audit}",
            "Audits that compared the answers of replicas announcing the same weights");
        meter.CreateObservableCounter("moemesh.routing.audit_disputes", () => node.Health?.Disputes ?? 0, "{audit}",
            "Audits of two answers that disagreed, with no third to break the tie");
        meter.CreateObservableGauge("moemesh.routing.flagged_hosts", () => node.Health?.Flagged.Count ?? 0, "{host}",
            "Hosts flagged by an audit for answering unlike the replicas that announce the same weights; no longer called");
        meter.CreateObservableGauge("moemesh.dht.routing_table.size", () => node.Dht.RoutingTableSize, "{contact}", "Contacts in the DHT routing table");
        meter.CreateObservableGauge("moemesh.dht.records", () => node.Dht.StoredRecords, "{record}", "DHT records held for the network");
    }

    public void Query(string model, int status, TimeSpan elapsed) =>
        _queryDuration.Record(elapsed.TotalMilliseconds, new("model", model), new("status", status));

    public void ExpertCall(string expert, string method, bool ok, TimeSpan elapsed) =>
        _callDuration.Record(elapsed.TotalMilliseconds, new("expert", expert), new("method", method), new("outcome", ok ? "ok" : "error"));
}
