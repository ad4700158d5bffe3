using MoEMesh.Experts.Runtime;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Wire;
using MoEMesh.Protocol.Wire.Experts;
using MoEMesh.Routing.Invocation;
using Tensor = MoEMesh.Tensors.Tensor;

namespace MoEMesh.Node.Serving;

/// <summary>
/// The local short-circuit: this node's own experts reached without the network, through the same
/// batching runtime that serves remote callers (so local and remote requests share batches, and a
/// backward steps the same optimizer). Every call ends by its deadline; only the caller's cancellation
/// throws. The runtime gets its own copy of the input: a call cut by its deadline may still sit in a
/// running batch, and the caller is free to release its tensors once the call returns.
/// </summary>
internal sealed class LocalExpertInvoker(IReadOnlyDictionary<string, HostedExpert> experts, BatchingRuntime runtime, TimeProvider time) : IExpertInvoker
{
    public Task<ExpertCallResult<Tensor>> ForwardAsync(ExpertTarget target, Tensor input, Compression compression, DateTimeOffset deadline, CancellationToken cancellationToken) =>
        CallAsync(target, deadline, cancellationToken, expert =>
        {
            expert.Backend.Schema.RequireInput(input, target.Uid.Value);
            var copy = input.Clone();
            return new Prepared(token => runtime.ForwardAsync(expert.Backend, copy, token), [copy], input.Rows);
        });

    public Task<ExpertCallResult<Tensor>> BackwardAsync(ExpertTarget target, Tensor input, Tensor outputGradient, bool frozen, Compression compression, DateTimeOffset deadline,
        CancellationToken cancellationToken) =>
        CallAsync(target, deadline, cancellationToken, expert =>
        {
            expert.Backend.Schema.RequireInput(input, target.Uid.Value);
            expert.Backend.Schema.RequireOutputGradient(outputGradient, input.Rows, target.Uid.Value);
            Tensor inputCopy = input.Clone(), gradientCopy = outputGradient.Clone();
            return new Prepared(token => frozen
                ? runtime.InputGradientAsync(expert.Backend, inputCopy, gradientCopy, token)
                : runtime.BackwardAsync(expert.Backend, inputCopy, gradientCopy, token), [inputCopy, gradientCopy], input.Rows);
        });

    public Task<ExpertCallResult<ExpertInfo>> InfoAsync(ExpertTarget target, DateTimeOffset deadline, CancellationToken cancellationToken) =>
        Task.FromResult(experts.TryGetValue(target.Uid.Value, out var expert)
            ? ExpertCallResult<ExpertInfo>.Answer(expert.Info())
            : NotHosted<ExpertInfo>(target));

    /// <summary>Checks the call (a bad one is Rejected naming what was wrong), then runs it under the deadline.</summary>
    private async Task<ExpertCallResult<Tensor>> CallAsync(ExpertTarget target, DateTimeOffset deadline, CancellationToken cancellationToken,
        Func<HostedExpert, Prepared> prepare)
    {
        if (!experts.TryGetValue(target.Uid.Value, out var expert)) return NotHosted<Tensor>(target);
        var remaining = deadline - time.GetUtcNow();
        if (remaining <= TimeSpan.Zero) return ExpertCallResult<Tensor>.Failed(CallOutcome.Timeout, "the deadline had passed before the call");
        Prepared work;
        try
        {
            work = prepare(expert);
        }
        catch (ArgumentException e)
        {
            return ExpertCallResult<Tensor>.Failed(CallOutcome.Rejected, e.Message);
        }
        using var timeout = new CancellationTokenSource(remaining, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        long started = time.GetTimestamp();
        int served = 0;
        expert.Load.Started();
        try
        {
            var output = await work.Run(linked.Token);
            work.Release();
            served = work.Rows;
            return ExpertCallResult<Tensor>.Answer(output);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested && timeout.IsCancellationRequested)
        {
            return ExpertCallResult<Tensor>.Failed(CallOutcome.Timeout, "no answer by the deadline");
        }
        catch (Exception e) when (e is ExpertExecutionException or ObjectDisposedException or ArgumentException)
        {
            work.Release();
            return ExpertCallResult<Tensor>.Failed(CallOutcome.Rejected, e.Message);
        }
        finally
        {
            expert.Load.Finished(time.GetElapsedTime(started), served);
        }
    }

    /// <summary>
    /// A checked call, the copies it hands the runtime, and its rows. The copies are released once the runtime is
    /// done with them; after a cancellation they are left to the garbage collector.
    /// </summary>
    private sealed record Prepared(Func<CancellationToken, Task<Tensor>> Run, Tensor[] Copies, int Rows)
    {
        public void Release()
        {
            foreach (var t in Copies) t.Dispose();
        }
    }

    private ExpertCallResult<T> NotHosted<T>(ExpertTarget target) =>
        ExpertCallResult<T>.Failed(CallOutcome.Rejected, $"expert {target.Uid} is not hosted on this node; it hosts {experts.Count} experts.");
}
