using MoEMesh.Tensors;

namespace MoEMesh.Experts.Runtime;

/// <summary>One queued request: its tensors, when it arrived, and the task its caller awaits.</summary>
internal sealed class WorkItem
{
    public WorkItem(ExpertBackend backend, BatchKind kind, Tensor input, Tensor? outputGradient, long enqueuedAt)
    {
        Backend = backend;
        Kind = kind;
        Input = input;
        OutputGradient = outputGradient;
        EnqueuedAt = enqueuedAt;
    }

    public ExpertBackend Backend { get; }

    public BatchKind Kind { get; }

    public Tensor Input { get; }

    public Tensor? OutputGradient { get; }

    public int Rows => Input.Rows;

    /// <summary>Timestamp from the runtime's <see cref="TimeProvider"/>.</summary>
    public long EnqueuedAt { get; }

    public TaskCompletionSource<Tensor> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>True once the caller gave up or the item was answered; such items are skipped.</summary>
    public bool IsFinished => Completion.Task.IsCompleted;
}
