namespace MoEMesh.Tensors.Tests;

public class TensorTests
{
    [Fact]
    public void RowSlice_WritesThrough_ToParent()
    {
        using var t = Tensor.Zeros(4, 3);
        using var view = t.RowSlice(1, 2);
        view[1, 2] = 7f;
        Assert.Equal(7f, t[2, 2]);
        Assert.Equal(new TensorShape(2, 3), view.Shape);
    }

    [Fact]
    public void Reshape_WrongElementCount_ThrowsWithBothShapes()
    {
        using var t = Tensor.Zeros(4, 3);
        var e = Assert.Throws<ArgumentException>(() => t.Reshape([5, 2]));
        Assert.Contains("[4, 3]", e.Message);
        Assert.Contains("[5, 2]", e.Message);
    }

    [Fact]
    public void Dispose_Twice_IsHarmless_AndUseAfterDisposeThrows()
    {
        var t = Tensor.Zeros(2, 2);
        t.Dispose();
        t.Dispose();
        Assert.Throws<ObjectDisposedException>(() => t.Span.Length);
    }

    [Fact]
    public void Zeros_FromReusedPoolStorage_IsZero()
    {
        var dirty = Tensor.Uninitialized([1000]);
        dirty.Span.Fill(3f);
        dirty.Dispose();
        using var clean = Tensor.Zeros(1000);
        Assert.All(clean.ToArray(), v => Assert.Equal(0f, v));
    }

    [Fact]
    public void Shape_NegativeDimension_IsRejected()
    {
        Assert.Throws<ArgumentException>(() => new TensorShape(2, -1));
    }

    [Theory]
    [InlineData(65536, 65536)]
    [InlineData(0, 65536, 65536)]
    [InlineData(65536, 0, 65536)]
    public void Shape_TooManyElements_IsRejected_EvenBehindAZeroDimension(params int[] dims)
    {
        // A zero dimension makes the tensor empty, but a row length computed from the others must still fit.
        var error = Assert.Throws<ArgumentException>(() => new TensorShape(dims));
        Assert.Contains("holds more than", error.Message);
        Assert.Equal(0, new TensorShape(0, 65536).Length);
    }

    [Fact]
    public void Row_OutOfRange_ThrowsNamingShape()
    {
        using var t = Tensor.Zeros(2, 2);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => t.Row(2).Length);
        Assert.Contains("[2, 2]", e.Message);
    }
}
