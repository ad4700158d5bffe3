using System.IO.Pipelines;

namespace MoEMesh.Protocol.Transport;

/// <summary>
/// Pipes over a stream (a client socket, or TLS) with buffers sized for tensors: the 4 KiB defaults
/// cost one system call per 4 KiB, which caps a 1 MiB payload at a few hundred MB/s. The pipes leave the
/// stream open: whoever owns the stream closes it once both directions are done, so completing the reader
/// on a protocol violation cannot close the socket under the GoAway still being written.
/// </summary>
internal static class StreamPipes
{
    private const int BufferBytes = 256 * 1024;

    public static PipeReader Reader(Stream stream) => PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: BufferBytes, minimumReadSize: BufferBytes / 4, leaveOpen: true));

    public static PipeWriter Writer(Stream stream) => PipeWriter.Create(stream, new StreamPipeWriterOptions(minimumBufferSize: BufferBytes, leaveOpen: true));
}
