using MoEMesh.Experts.Weights;
using MoEMesh.Tensors;
using MoEMesh.Tensors.Serialization;

namespace MoEMesh.Experts.Tests;

/// <summary>An expert's weights alone: what hosts publish, adopt and average.</summary>
public sealed class ExpertWeightsTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("moemesh-weights-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static void TrainSteps(ExpertBackend backend, int steps, ulong seed) => ExpertCheckpointTests.TrainSteps(backend, steps, seed);

    private static byte[] Bytes(ExpertWeights weights)
    {
        using var stream = new MemoryStream();
        weights.Write(stream);
        return stream.ToArray();
    }

    private static ExpertWeights Read(byte[] bytes, ExpertBackend into, long updates)
    {
        using var stream = new MemoryStream(bytes);
        return ExpertWeights.Read(stream, into, updates);
    }

    [Fact]
    public void WrittenWeights_ReadBackEqual_AndEqualWeightsWriteEqualBytes()
    {
        var backend = ExpertBackendTests.Create();
        TrainSteps(backend, 3, 1);
        using var copy = ExpertWeights.Of(backend);
        Assert.Equal(3, copy.Updates);
        var bytes = Bytes(copy);
        Assert.Equal(bytes, Bytes(copy));
        using var read = Read(bytes, ExpertBackendTests.Create(), 3);
        Assert.True(read.Matches(copy, 0f));
        Assert.False(read.Matches(ExpertWeights.Of(ExpertBackendTests.Create()), 1e-6f));
    }

    [Fact]
    public void Weights_WithANaN_AnotherShape_OrAMissingTensor_AreRefused_NamingWhat()
    {
        var backend = ExpertBackendTests.Create();
        var parameters = backend.Expert.Parameters;
        byte[] With(Func<Parameter, SafeTensorEntry?> entry)
        {
            using var stream = new MemoryStream();
            SafeTensorsFile.Write(stream, parameters.Select(entry).OfType<SafeTensorEntry>().ToArray());
            return stream.ToArray();
        }
        var first = parameters[0];
        var nan = first.Value.Clone();
        nan.Span[3] = float.NaN;
        var e = Assert.Throws<InvalidDataException>(() => Read(With(p => new(p.Name, p == first ? nan : p.Value)), backend, 1));
        Assert.Contains($"'{first.Name}' holds NaN at 3", e.Message);
        var infinite = first.Value.Clone();
        infinite.Span[0] = float.PositiveInfinity;
        Assert.Contains("must be finite", Assert.Throws<InvalidDataException>(() => Read(With(p => new(p.Name, p == first ? infinite : p.Value)), backend, 1)).Message);
        using var wide = Tensor.Zeros(first.Value.Shape.Length + 1);
        Assert.Contains($"'{first.Name}' has shape", Assert.Throws<InvalidDataException>(() => Read(With(p => new(p.Name, p == first ? wide : p.Value)), backend, 1)).Message);
        Assert.Contains(first.Name, Assert.Throws<InvalidDataException>(() => Read(With(p => p == first ? null : new(p.Name, p.Value)), backend, 1)).Message);
        Assert.Contains("a tensor 'extra'", Assert.Throws<InvalidDataException>(() => Read(WithExtra(parameters), backend, 1)).Message);
    }

    private static byte[] WithExtra(IReadOnlyList<Parameter> parameters)
    {
        using var stream = new MemoryStream();
        using var extra = Tensor.Zeros(2);
        SafeTensorsFile.Write(stream, parameters.Select(p => new SafeTensorEntry(p.Name, p.Value)).Append(new SafeTensorEntry("extra", extra)).ToArray());
        return stream.ToArray();
    }

    [Fact]
    public void Average_WeighsEachCopyByItsShare_AndEquallyWhenNoShareIsGiven()
    {
        var a = ExpertBackendTests.Create();
        var b = ExpertBackendTests.Create();
        TrainSteps(a, 3, 1);
        TrainSteps(b, 3, 50);
        using var wa = ExpertWeights.Of(a);
        using var wb = ExpertWeights.Of(b);
        using var weighted = ExpertWeights.Average([wa, wb], [3, 1], 4);
        using var equal = ExpertWeights.Average([wa, wb], [0, 0], 3);
        var name = a.Expert.Parameters[0].Name;
        float x = wa.Tensors[name].Span[5], y = wb.Tensors[name].Span[5];
        Assert.Equal(0.75f * x + 0.25f * y, weighted.Tensors[name].Span[5], 1e-6f);
        Assert.Equal(0.5f * x + 0.5f * y, equal.Tensors[name].Span[5], 1e-6f);
        Assert.Equal(4, weighted.Updates);
    }

    [Fact]
    public void LoadingAnAverage_SinceACopy_KeepsTheStepsTakenAfterThatCopy()
    {
        var backend = ExpertBackendTests.Create();
        TrainSteps(backend, 2, 1);
        using var contributed = ExpertWeights.Of(backend);
        TrainSteps(backend, 3, 9); // trained on while the average was made
        using var now = ExpertWeights.Of(backend);
        var other = ExpertBackendTests.Create();
        TrainSteps(other, 4, 30);
        using var average = ExpertWeights.Average([contributed, ExpertWeights.Of(other)], [2, 4], 6);

        average.LoadInto(backend, new WeightsLineage(WeightsLineage.Averaged, "leader", 6), since: contributed);
        var name = backend.Expert.Parameters[0].Name;
        for (int i = 0; i < 8; i++)
            Assert.Equal(average.Tensors[name].Span[i] + (now.Tensors[name].Span[i] - contributed.Tensors[name].Span[i]), backend.Expert.Parameters[0].Value.Span[i], 1e-6f);
        Assert.Equal(6 + 3, backend.UpdateCount);
        Assert.Equal(5, backend.Optimizer.StepCount); // the optimizer's own count, its schedule and bias correction, is untouched
        Assert.Equal("averaged with its replicas (led by leader) at update 6, trained here to update 9", backend.Lineage.Describe(backend.UpdateCount));
    }

    [Fact]
    public void ACheckpoint_KeepsAdoptedUpdatesAndLineage_ApartFromTheOptimizersSteps()
    {
        var source = ExpertBackendTests.Create();
        TrainSteps(source, 4, 1);
        using var snapshot = ExpertWeights.Of(source);
        var adopter = ExpertBackendTests.Create();
        snapshot.LoadInto(adopter, new WeightsLineage(WeightsLineage.Adopted, "host", 4));
        TrainSteps(adopter, 2, 7);
        ExpertCheckpoint.Save(adopter, _directory);

        var restored = ExpertBackendTests.Create();
        Assert.True(ExpertCheckpoint.TryRestore(restored, _directory));
        Assert.Equal((6L, 2L), (restored.UpdateCount, restored.Optimizer.StepCount));
        Assert.Equal(new WeightsLineage(WeightsLineage.Adopted, "host", 4), restored.Lineage);
        using var a = ExpertWeights.Of(adopter);
        using var b = ExpertWeights.Of(restored);
        Assert.True(a.Matches(b, 0f));
    }
}
