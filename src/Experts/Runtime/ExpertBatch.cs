namespace MoEMesh.Experts.Runtime;

/// <summary>Requests for one expert and pass, run as one batch.</summary>
internal sealed record ExpertBatch(ExpertBackend Backend, BatchKind Kind, IReadOnlyList<WorkItem> Items)
{
    public int Rows => Items.Sum(i => i.Rows);
}
