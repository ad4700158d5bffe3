using System.IO.Pipelines;

namespace MoEMesh.Protocol.Transport;

/// <summary>
/// Pipes over a stream (a client socket, or TLS) with buffers sized for tensors: the 4 KiB defaults
/// cost one system call per 4 KiB, which caps a 1 MiB payload at a few hundred MB/s.
/// </summary>
internal static class StreamPipes
{
    private const int BufferBytes = 256 * 1024;

    public static PipeReader Reader(Stream stream) => PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: BufferBytes, minimumReadSize: BufferBytes / 4));

    public static PipeWriter Writer(Stream stream) => PipeWriter.Create(stream, new StreamPipeWriterOptions(minimumBufferSize: BufferBytes));
}
