using MoEMesh.Tensors;
using MoEMesh.Tensors.Optimizers;

namespace MoEMesh.Experts;

/// <summary>
/// An expert with its own optimizer: every backward batch zeroes the gradients, runs backward, clips,
/// and steps, so the expert trains on its host from whatever gating nodes send it. Not thread-safe:
/// behind a <see cref="Runtime.BatchingRuntime"/> only the runtime's loop calls it.
/// </summary>
public sealed class ExpertBackend
{
    private readonly float? _maxGradNorm;

    /// <summary>Creates the backend.</summary>
    /// <param name="name">The expert's uid, used in messages and checkpoints.</param>
    /// <param name="spec">How the expert was built (recorded in checkpoints).</param>
    /// <param name="expert">The expert.</param>
    /// <param name="optimizer">How it trains.</param>
    public ExpertBackend(string name, ExpertSpec spec, IExpert expert, OptimizerOptions optimizer)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        Name = name;
        Spec = spec;
        Expert = expert;
        Optimizer = optimizer.Create(expert.Parameters);
        _maxGradNorm = optimizer.MaxGradNorm;
    }

    /// <summary>The expert's uid.</summary>
    public string Name { get; }

    /// <summary>How the expert was built.</summary>
    public ExpertSpec Spec { get; }

    /// <summary>The expert.</summary>
    public IExpert Expert { get; }

    /// <summary>The optimizer.</summary>
    public Optimizer Optimizer { get; }

    /// <summary>The domain and contributor of a contributed expert (kept in its checkpoints and announced); null when unknown.</summary>
    public ExpertOrigin? Origin { get; set; }

    /// <summary>Per-sample shapes.</summary>
    public ExpertSchema Schema => Expert.Schema;

    /// <summary>
    /// Held while weights change (backward and its step) and while a checkpoint copies them, so a checkpoint
    /// taken while the expert trains never holds a half-applied step.
    /// </summary>
    public object WeightsLock { get; } = new();

    /// <summary>
    /// Loads optimizer state a checkpoint restore left to be read later (<see cref="ExpertCheckpoint.TryRestore"/>),
    /// under <see cref="WeightsLock"/>; forwards go on meanwhile. A node calls it once it serves, so the first
    /// training step does not pay for it.
    /// </summary>
    /// <exception cref="InvalidDataException">The state in the checkpoint is damaged: the optimizer goes on from fresh state.</exception>
    /// <exception cref="IOException">The checkpoint could not be read: the first step tries again.</exception>
    public void LoadOptimizerState()
    {
        lock (WeightsLock) Optimizer.EnsureStateLoaded();
    }

    /// <summary>Held by a checkpoint save from start to end, so two saves of this expert never write at once.</summary>
    public object CheckpointLock { get; } = new();

    /// <summary>
    /// Updates the weights embody: those they carried when adopted or averaged, plus the optimizer steps
    /// applied here since (backward batches processed), also after a restore.
    /// </summary>
    public long UpdateCount => _updatesBefore + Optimizer.StepCount;

    private long _updatesBefore;
    private long _loads;

    /// <summary>Grows whenever the weights change (a step, or weights put in); equal values mean equal weights.</summary>
    public long Changes => _loads + Optimizer.StepCount;

    /// <summary>Where the weights came from (seed, adopted, averaged); kept in checkpoints.</summary>
    public Weights.WeightsLineage Lineage { get; private set; } = Weights.WeightsLineage.Initial;

    /// <summary>
    /// Sets the updates the weights embody (taken from a snapshot, an average or a checkpoint) and where they
    /// came from; the optimizer's own step count, which its schedule and bias correction follow, is unchanged.
    /// </summary>
    public void SetUpdates(long updates, Weights.WeightsLineage lineage)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(updates, Optimizer.StepCount);
        _updatesBefore = updates - Optimizer.StepCount;
        Lineage = lineage;
        _loads++;
    }

    /// <summary>Forward for a batch.</summary>
    public Tensor Forward(Tensor input) => Expert.Forward(input);

    /// <summary>
    /// Backward for a batch and one optimizer step. A batch whose gradient norm is not finite is not
    /// applied (the weights stay as they were) and fails with an <see cref="ArithmeticException"/>.
    /// </summary>
    public Tensor Backward(Tensor input, Tensor outputGradient)
    {
        lock (WeightsLock) return BackwardAndStep(input, outputGradient);
    }

    /// <summary>The input gradient for a batch, without a step: the weights stay as they are (a frozen expert).</summary>
    public Tensor InputGradient(Tensor input, Tensor outputGradient)
    {
        // The parameter gradients it leaves behind are zeroed by the next backward before it uses them.
        lock (WeightsLock) return Expert.Backward(input, outputGradient);
    }

    private Tensor BackwardAndStep(Tensor input, Tensor outputGradient)
    {
        foreach (var p in Expert.Parameters) p.ZeroGradient();
        var inputGradient = Expert.Backward(input, outputGradient);
        if (Expert.Parameters.Count == 0) return inputGradient;
        float norm = _maxGradNorm is { } max
            ? GradientClipping.ClipByGlobalNorm(Expert.Parameters, max)
            : GradientClipping.GlobalNorm(Expert.Parameters);
        if (!float.IsFinite(norm))
        {
            inputGradient.Dispose();
            throw new ArithmeticException($"Expert {Name}: gradient norm is {norm}; the update was skipped.");
        }
        Optimizer.Step();
        return inputGradient;
    }

    /// <inheritdoc />
    public override string ToString() => $"{Name} {Expert}";
}
