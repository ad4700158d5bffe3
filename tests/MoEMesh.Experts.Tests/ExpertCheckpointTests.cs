using MoEMesh.Testing;

namespace MoEMesh.Experts.Tests;

public sealed class ExpertCheckpointTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("moemesh-ckpt-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    /// <summary>Trains <paramref name="backend"/> <paramref name="steps"/> steps on seeded random inputs and gradients.</summary>
    internal static void TrainSteps(ExpertBackend backend, int steps, ulong seed)
    {
        for (int s = 0; s < steps; s++)
        {
            using var input = GradientCheck.Random([4, 8], seed + (ulong)s);
            using var gradient = GradientCheck.Random([4, 8], seed + 100 + (ulong)s);
            backend.Backward(input, gradient).Dispose();
        }
    }

    [Fact]
    public void Restore_IntoNewBackend_GivesSameOutputs_AndTrainsOnIdentically()
    {
        var original = ExpertBackendTests.Create();
        TrainSteps(original, 3, 10);
        ExpertCheckpoint.Save(original, _directory);

        var restored = ExpertBackendTests.Create();
        Assert.True(ExpertCheckpoint.TryRestore(restored, _directory));
        Assert.Equal(3, restored.UpdateCount);
        using var probe = GradientCheck.Random([5, 8], 77);
        using (var a = original.Forward(probe))
        using (var b = restored.Forward(probe))
            Assert.Equal(a.ToArray(), b.ToArray());

        TrainSteps(original, 2, 50);
        TrainSteps(restored, 2, 50);
        using var c = original.Forward(probe);
        using var d = restored.Forward(probe);
        Assert.Equal(c.ToArray(), d.ToArray());
    }

    [Fact]
    public async Task Snapshot_IsTakenUnderTheWeightsLock_AndWrittenAfterIt_SoTrainingGoesOnMeanwhile()
    {
        var original = ExpertBackendTests.Create();
        TrainSteps(original, 3, 10);
        using var probe = GradientCheck.Random([5, 8], 79);
        using var atSnapshot = original.Forward(probe);
        using var snapshot = ExpertCheckpoint.Snapshot(original);

        // The lock is free before the snapshot is written: another thread trains now (it would block if not).
        await Task.Run(() => TrainSteps(original, 2, 60)).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(5, original.UpdateCount);
        snapshot.WriteTo(_directory);

        // What was written is the expert as it was at the snapshot, whole.
        var restored = ExpertBackendTests.Create();
        Assert.True(ExpertCheckpoint.TryRestore(restored, _directory));
        Assert.Equal(3, restored.UpdateCount);
        using var fromDisk = restored.Forward(probe);
        Assert.Equal(atSnapshot.ToArray(), fromDisk.ToArray());
    }

    [Fact]
    public void UntrainedExpert_HoldsNoGradientsOrOptimizerState_AndItsCheckpointRestoresAndTrainsIdentically()
    {
        var original = ExpertBackendTests.Create();
        using (var probeInput = GradientCheck.Random([2, 8], 3))
            original.Forward(probeInput).Dispose();
        Assert.All(original.Expert.Parameters, p => Assert.False(p.HasGradient));
        Assert.Empty(original.Optimizer.State);
        ExpertCheckpoint.Save(original, _directory);

        var restored = ExpertBackendTests.Create();
        Assert.True(ExpertCheckpoint.TryRestore(restored, _directory));
        Assert.Equal(0, restored.UpdateCount);
        TrainSteps(original, 2, 30);
        TrainSteps(restored, 2, 30);
        Assert.NotEmpty(original.Optimizer.State);
        using var probe = GradientCheck.Random([5, 8], 78);
        using var a = original.Forward(probe);
        using var b = restored.Forward(probe);
        Assert.Equal(a.ToArray(), b.ToArray());
    }

    [Fact]
    public void TryRestore_EmptyDirectory_ReturnsFalse()
    {
        Assert.False(ExpertCheckpoint.TryRestore(ExpertBackendTests.Create(), _directory));
    }

    [Fact]
    public void Save_Twice_KeepsOnlyTheNewestWeights()
    {
        var backend = ExpertBackendTests.Create();
        ExpertCheckpoint.Save(backend, _directory);
        TrainSteps(backend, 1, 1);
        ExpertCheckpoint.Save(backend, _directory);
        Assert.Equal(["checkpoint.json", "weights.0000000001.safetensors"], Directory.GetFiles(_directory).Select(Path.GetFileName).Order());
    }

    [Fact]
    public void CrashBeforeManifest_LeavesThePreviousCheckpointInForce()
    {
        var backend = ExpertBackendTests.Create();
        TrainSteps(backend, 1, 1);
        ExpertCheckpoint.Save(backend, _directory);
        // What a crash mid-save leaves: a newer weights file (or a half-written temporary) but the old manifest.
        File.WriteAllBytes(Path.Combine(_directory, "weights.0000000009.safetensors"), [1, 2, 3]);
        File.WriteAllBytes(Path.Combine(_directory, ".checkpoint.json.0123.tmp"), [4, 5]);

        var restored = ExpertBackendTests.Create();
        Assert.True(ExpertCheckpoint.TryRestore(restored, _directory));
        Assert.Equal(1, restored.UpdateCount);
    }

    /// <summary>Flips one byte of the weights file: at <paramref name="at"/> from its start, or from the start of its data section.</summary>
    private string Damage(int at, bool inData)
    {
        var weights = Directory.GetFiles(_directory, "weights.*").Single();
        var bytes = File.ReadAllBytes(weights);
        int offset = inData ? 8 + (int)BitConverter.ToUInt64(bytes, 0) + at : at;
        bytes[offset < 0 ? bytes.Length + offset : offset] ^= 0xFF;
        File.WriteAllBytes(weights, bytes);
        return weights;
    }

    /// <summary>A damaged weights file is refused as not matching its SHA-256, whether the damage is in the parameters or in the header the parser reads first.</summary>
    [Theory]
    [InlineData(12, false)]
    [InlineData(40, true)]
    public void Restore_CorruptWeights_FailsNamingTheFile_AndLeavesTheExpertAsItWas(int damagedByte, bool inData)
    {
        var backend = ExpertBackendTests.Create();
        TrainSteps(backend, 2, 3);
        ExpertCheckpoint.Save(backend, _directory);
        var weights = Damage(damagedByte, inData);
        // A fresh expert: its weights differ from the trained ones in the file, and must stay its own.
        var target = ExpertBackendTests.Create();
        var before = target.Expert.Parameters.Select(p => p.Value.ToArray()).ToArray();
        var e = Assert.Throws<InvalidDataException>(() => ExpertCheckpoint.TryRestore(target, _directory));
        Assert.Contains("SHA-256", e.Message);
        Assert.Contains(Path.GetFileName(weights), e.Message);
        Assert.Equal(before, target.Expert.Parameters.Select(p => p.Value.ToArray()));
        Assert.Equal(0, target.UpdateCount);
    }

    [Fact]
    public void OptimizerState_IsReadWhenTheExpertFirstTrains_AndTrainsOnAsIfNeverStopped()
    {
        var original = ExpertBackendTests.Create();
        TrainSteps(original, 3, 10);
        ExpertCheckpoint.Save(original, _directory);

        var restored = ExpertBackendTests.Create();
        Assert.True(ExpertCheckpoint.TryRestore(restored, _directory));
        Assert.True(restored.Optimizer.StatePending);
        Assert.Equal(3, restored.UpdateCount);
        TrainSteps(original, 2, 50);
        TrainSteps(restored, 2, 50);
        Assert.False(restored.Optimizer.StatePending);
        Assert.Equal(original.Expert.Parameters.Select(p => p.Value.ToArray()), restored.Expert.Parameters.Select(p => p.Value.ToArray()));
    }

    [Fact]
    public void ACheckpointOfAnExpertThatHasNotTrainedSinceItsRestore_StillHoldsItsOptimizerState()
    {
        var original = ExpertBackendTests.Create();
        TrainSteps(original, 3, 10);
        ExpertCheckpoint.Save(original, _directory);
        var restored = ExpertBackendTests.Create();
        Assert.True(ExpertCheckpoint.TryRestore(restored, _directory));
        var again = Path.Combine(_directory, "again");
        ExpertCheckpoint.Save(restored, again);

        var third = ExpertBackendTests.Create();
        Assert.True(ExpertCheckpoint.TryRestore(third, again));
        TrainSteps(original, 2, 50);
        TrainSteps(third, 2, 50);
        Assert.Equal(original.Expert.Parameters.Select(p => p.Value.ToArray()), third.Expert.Parameters.Select(p => p.Value.ToArray()));
    }

    [Fact]
    public void DamagedOptimizerState_IsFoundWhenItIsLoaded_ThenTheExpertTrainsOnFromFreshState()
    {
        var original = ExpertBackendTests.Create();
        TrainSteps(original, 2, 3);
        ExpertCheckpoint.Save(original, _directory);
        var weights = Damage(-1, inData: false); // the last byte: optimizer state, written after the parameters

        var restored = ExpertBackendTests.Create();
        Assert.True(ExpertCheckpoint.TryRestore(restored, _directory));
        Assert.Equal(original.Expert.Parameters.Select(p => p.Value.ToArray()), restored.Expert.Parameters.Select(p => p.Value.ToArray()));
        var e = Assert.Throws<InvalidDataException>(restored.LoadOptimizerState);
        Assert.Contains("SHA-256", e.Message);
        Assert.Contains(Path.GetFileName(weights), e.Message);
        Assert.Equal(2, restored.UpdateCount);
        Assert.Equal(original.Expert.Parameters.Select(p => p.Value.ToArray()), restored.Expert.Parameters.Select(p => p.Value.ToArray()));

        // Not tried again: the next step starts the moments afresh, at the saved step count.
        Assert.False(restored.Optimizer.StatePending);
        TrainSteps(restored, 1, 50);
        Assert.Equal(3, restored.UpdateCount);
    }

    [Fact]
    public void ACheckpointWithoutAParametersHash_IsVerifiedWhole()
    {
        var original = ExpertBackendTests.Create();
        TrainSteps(original, 2, 3);
        ExpertCheckpoint.Save(original, _directory);
        var manifestPath = Path.Combine(_directory, ExpertCheckpoint.ManifestName);
        var manifest = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(manifestPath))!.AsObject();
        Assert.True(manifest.Remove("parameters_sha256") && manifest.Remove("parameters_bytes"));
        File.WriteAllText(manifestPath, manifest.ToJsonString());

        var restored = ExpertBackendTests.Create();
        Assert.True(ExpertCheckpoint.TryRestore(restored, _directory));
        Assert.Equal(original.Expert.Parameters.Select(p => p.Value.ToArray()), restored.Expert.Parameters.Select(p => p.Value.ToArray()));
        Damage(-1, inData: false);
        Assert.Contains("SHA-256", Assert.Throws<InvalidDataException>(() => ExpertCheckpoint.TryRestore(ExpertBackendTests.Create(), _directory)).Message);
    }

    [Fact]
    public void Restore_OtherSpecOrOptimizer_IsRefused()
    {
        ExpertCheckpoint.Save(ExpertBackendTests.Create(seed: 1), _directory);
        var otherSeed = Assert.Throws<InvalidDataException>(() => ExpertCheckpoint.TryRestore(ExpertBackendTests.Create(seed: 2), _directory));
        Assert.EndsWith($"saved with seed {ExpertBackendTests.Create(seed: 1).Spec.Seed}, not {ExpertBackendTests.Create(seed: 2).Spec.Seed}.", otherSeed.Message);
        var otherOptimizer = Assert.Throws<InvalidDataException>(() => ExpertCheckpoint.TryRestore(ExpertBackendTests.Create(optimizer: "sgd"), _directory));
        Assert.Contains("optimizer adam", otherOptimizer.Message);
    }

    [Fact]
    public void Restore_NamesEachDifferingField()
    {
        ExpertCheckpoint.Save(new ExpertBackend("ffn.0", new ExpertSpec("ffn", 8), ExpertRegistry.CreateDefault().Create(new ExpertSpec("ffn", 8)), new OptimizerOptions()), _directory);
        var wider = new ExpertSpec("ffn", 16);
        var e = Assert.Throws<InvalidDataException>(() => ExpertCheckpoint.TryRestore(new ExpertBackend("ffn.0", wider, ExpertRegistry.CreateDefault().Create(wider), new OptimizerOptions()), _directory));
        Assert.EndsWith("holds ffn.0 saved with hidden width 8, not 16 and inner width 32, not 64.", e.Message);
    }

    [Fact]
    public void Restore_RemovesWhatACrashedSaveLeft_AndKeepsTheCheckpoint()
    {
        var backend = ExpertBackendTests.Create();
        ExpertCheckpoint.Save(backend, _directory);
        var kept = Path.GetFileName(Directory.GetFiles(_directory, "weights.*").Single());
        File.WriteAllBytes(Path.Combine(_directory, "weights.0000000099.safetensors"), [1, 2, 3]); // a save cut short before its manifest
        File.WriteAllBytes(Path.Combine(_directory, ".checkpoint.json.0123.tmp"), [1]);
        Assert.True(ExpertCheckpoint.TryRestore(ExpertBackendTests.Create(), _directory));
        Assert.Equal([ExpertCheckpoint.ManifestName, kept], Directory.GetFiles(_directory).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Restore_WithoutAManifest_RemovesLeftoversOfAFirstSave()
    {
        Directory.CreateDirectory(_directory);
        File.WriteAllBytes(Path.Combine(_directory, "weights.0000000001.safetensors"), [1, 2, 3]);
        Assert.False(ExpertCheckpoint.TryRestore(ExpertBackendTests.Create(), _directory));
        Assert.Empty(Directory.GetFiles(_directory));
    }
}
