namespace MoEMesh.Tensors.Tests;

public class FunctionsTests
{
    [Fact]
    public void Gelu_MatchesTanhFormula()
    {
        float[] x = [-6f, -2.5f, -1f, -0.1f, 0f, 0.3f, 1f, 2f, 5f];
        var y = new float[x.Length];
        Functions.Gelu(x, y);
        for (int i = 0; i < x.Length; i++)
        {
            double v = x[i];
            double expected = 0.5 * v * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)));
            Assert.Equal(expected, y[i], 5);
        }
    }

    [Fact]
    public void SoftmaxRows_EachRowSumsToOne_AndMatchesDefinition()
    {
        float[] x = [1f, 2f, 3f, -1f, 0f, 1000f];
        var y = new float[6];
        Functions.SoftmaxRows(x, 3, y);
        Assert.Equal(1.0, y[0] + y[1] + y[2], 5);
        Assert.Equal(Math.Exp(1) / (Math.Exp(1) + Math.Exp(2) + Math.Exp(3)), y[0], 5);
        Assert.Equal(1f, y[5], 5);
    }

    [Fact]
    public void LogSoftmaxRows_LargeLogits_StayFinite()
    {
        float[] x = [1000f, 1001f, 999f];
        var y = new float[3];
        Functions.LogSoftmaxRows(x, 3, y);
        double logSum = 1001 + Math.Log(Math.Exp(-1) + 1 + Math.Exp(-2));
        Assert.Equal(1000 - logSum, y[0], 4);
        Assert.Equal(1001 - logSum, y[1], 4);
    }

    [Fact]
    public void LayerNormRows_GivesZeroMeanUnitVariance()
    {
        float[] x = [1f, 2f, 3f, 4f, 10f, -10f, 0f, 5f];
        var y = new float[8];
        Functions.LayerNormRows(x, 4, [1f, 1f, 1f, 1f], [0f, 0f, 0f, 0f], 1e-5f, y);
        for (int row = 0; row < 2; row++)
        {
            var r = y.AsSpan(row * 4, 4).ToArray();
            Assert.Equal(0.0, r.Average(), 5);
            Assert.Equal(1.0, r.Select(v => (double)v * v).Average(), 3);
        }
    }

    [Fact]
    public void Relu_ZeroesNegatives()
    {
        float[] x = [-1f, 0f, 2f];
        var y = new float[3];
        Functions.Relu(x, y);
        Assert.Equal([0f, 0f, 2f], y);
    }
}
