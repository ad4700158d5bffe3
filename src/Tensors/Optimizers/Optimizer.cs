namespace MoEMesh.Tensors.Optimizers;

/// <summary>
/// Updates parameters from their gradients. Subclasses update one contiguous slice at a time, which
/// serves dense parameters (one slice) and row-sparse ones (a slice per touched row) alike.
/// State tensors are named "&lt;parameter&gt;.&lt;slot&gt;" so they checkpoint beside the weights. Each is
/// allocated (as zeros) when a step first needs it, so an optimizer that has not stepped holds no state:
/// for an Adam-trained expert that is half the memory it would otherwise take before training starts.
/// </summary>
public abstract class Optimizer
{
    private readonly Parameter[] _parameters;
    private readonly Dictionary<string, Tensor> _state = new(StringComparer.Ordinal);
    private readonly Dictionary<string, TensorShape> _stateShapes = new(StringComparer.Ordinal);
    private Func<IReadOnlyDictionary<string, Tensor>>? _pendingState;

    /// <summary>Creates the optimizer with one state tensor per parameter for each slot (allocated on first use).</summary>
    protected Optimizer(IEnumerable<Parameter> parameters, LearningRateSchedule schedule, IReadOnlyList<string> slots)
    {
        schedule.Validate();
        _parameters = parameters.ToArray();
        Schedule = schedule;
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var p in _parameters)
        {
            if (!names.Add(p.Name)) throw new ArgumentException($"Two parameters are named {p.Name}; optimizer state needs unique names.");
            foreach (var slot in slots) _stateShapes[StateName(p, slot)] = p.Value.Shape;
        }
    }

    /// <summary>A short name for checkpoints ("sgd", "adam", "adamw").</summary>
    public abstract string Name { get; }

    /// <summary>Steps taken so far.</summary>
    public long StepCount { get; private set; }

    /// <summary>The learning-rate schedule.</summary>
    public LearningRateSchedule Schedule { get; }

    /// <summary>The rate the next step will use.</summary>
    public float CurrentLearningRate => Schedule.At(StepCount);

    /// <summary>The parameters this optimizer updates.</summary>
    public IReadOnlyList<Parameter> Parameters => _parameters;

    /// <summary>
    /// Named state tensors (moments, momentum) allocated so far, for checkpoints; absent ones are zeros.
    /// State adopted later (<see cref="AdoptLater"/>) is loaded first (<see cref="EnsureStateLoaded"/>), so
    /// read it where a step could not run at the same time.
    /// </summary>
    public IReadOnlyDictionary<string, Tensor> State
    {
        get
        {
            EnsureStateLoaded();
            return _state;
        }
    }

    /// <summary>Whether state adopted later has not been loaded yet.</summary>
    public bool StatePending => _pendingState is not null;

    /// <summary>Applies one update from the current gradients. Gradients are left as they are.</summary>
    public void Step()
    {
        EnsureStateLoaded();
        float rate = CurrentLearningRate;
        long step = StepCount + 1;
        foreach (var p in _parameters)
            p.ForEachGradientSlice((start, length) => UpdateSlice(p, start, length, rate, step));
        StepCount = step;
    }

    /// <summary>
    /// Restores the step counter and state tensors saved from an optimizer of the same kind. State the
    /// checkpoint does not hold was never allocated when it was saved, so it is zeros.
    /// </summary>
    /// <exception cref="InvalidDataException">A state tensor has an unknown name or another shape.</exception>
    public void Restore(long stepCount, IReadOnlyDictionary<string, Tensor> state)
    {
        Check(stepCount, state);
        _pendingState = null;
        foreach (var tensor in _state.Values) tensor.Span.Clear();
        foreach (var (name, saved) in state) saved.Span.CopyTo(StateTensor(name).Span);
        StepCount = stepCount;
    }

    /// <summary>
    /// Restores as <see cref="Restore"/> does, taking the state tensors over instead of copying them (a
    /// checkpoint's tensors, just read: no second allocation of the optimizer's state, which for Adam is twice
    /// the weights). The optimizer owns them afterwards; on an exception it has taken none.
    /// </summary>
    /// <exception cref="InvalidDataException">A state tensor has an unknown name or another shape.</exception>
    public void Adopt(long stepCount, IReadOnlyDictionary<string, Tensor> state)
    {
        Check(stepCount, state);
        _pendingState = null;
        foreach (var tensor in _state.Where(s => !state.ContainsKey(s.Key)).Select(s => s.Value)) tensor.Span.Clear();
        foreach (var (name, saved) in state)
        {
            if (_state.Remove(name, out var old)) old.Dispose();
            _state[name] = saved;
        }
        StepCount = stepCount;
    }

    /// <summary>
    /// Restores the step counter now and adopts the state tensors <paramref name="load"/> gives when they
    /// are first needed (<see cref="EnsureStateLoaded"/>: the next <see cref="Step"/>, or <see cref="State"/>
    /// read for a checkpoint), so a node restarting from a checkpoint need not read or hold optimizer state
    /// (for Adam, twice the weights) before it serves.
    /// </summary>
    /// <param name="stepCount">Steps taken when the state was saved.</param>
    /// <param name="shapes">The names and shapes of the state tensors <paramref name="load"/> will give, checked now.</param>
    /// <param name="load">Reads the state tensors; the optimizer owns them afterwards.</param>
    /// <exception cref="InvalidDataException">A state tensor has an unknown name or another shape.</exception>
    public void AdoptLater(long stepCount, IReadOnlyDictionary<string, TensorShape> shapes, Func<IReadOnlyDictionary<string, Tensor>> load)
    {
        Check(stepCount, shapes);
        ArgumentNullException.ThrowIfNull(load);
        StepCount = stepCount;
        _pendingState = load;
    }

    /// <summary>
    /// Loads state adopted later, if any. A load that finds the state damaged (<see cref="InvalidDataException"/>)
    /// is not tried again: the exception is thrown once and the optimizer goes on from fresh state (zeros) at
    /// the saved step count; any other exception leaves the load to be tried next time.
    /// </summary>
    public void EnsureStateLoaded()
    {
        if (_pendingState is not { } load) return;
        IReadOnlyDictionary<string, Tensor> state;
        try
        {
            state = load();
        }
        catch (InvalidDataException)
        {
            _pendingState = null;
            throw;
        }
        try
        {
            Adopt(StepCount, state);
        }
        catch
        {
            foreach (var t in state.Values) t.Dispose();
            throw;
        }
    }

    private void Check(long stepCount, IReadOnlyDictionary<string, Tensor> state) =>
        Check(stepCount, state.ToDictionary(s => s.Key, s => s.Value.Shape));

    private void Check(long stepCount, IReadOnlyDictionary<string, TensorShape> shapes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(stepCount);
        foreach (var (name, saved) in shapes)
        {
            if (!_stateShapes.TryGetValue(name, out var shape))
                throw new InvalidDataException($"Optimizer state {name} in the checkpoint belongs to no parameter of this {Name} optimizer.");
            if (saved != shape)
                throw new InvalidDataException($"Optimizer state {name} has shape {saved} in the checkpoint; expected {shape}.");
        }
    }

    /// <summary>Updates elements [start, start + length) of <paramref name="parameter"/>.</summary>
    /// <param name="parameter">The parameter.</param>
    /// <param name="start">First element.</param>
    /// <param name="length">Element count.</param>
    /// <param name="rate">Learning rate for this step.</param>
    /// <param name="step">1-based number of this step (for bias correction).</param>
    protected abstract void UpdateSlice(Parameter parameter, int start, int length, float rate, long step);

    /// <summary>The slice of a state tensor matching a parameter slice.</summary>
    protected Span<float> StateSlice(Parameter parameter, string slot, int start, int length) =>
        StateTensor(StateName(parameter, slot)).Span.Slice(start, length);

    private Tensor StateTensor(string name)
    {
        if (!_state.TryGetValue(name, out var tensor)) _state[name] = tensor = Tensor.Zeros(_stateShapes[name]);
        return tensor;
    }

    private static string StateName(Parameter p, string slot) => p.Name + "." + slot;
}
