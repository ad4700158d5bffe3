using MoEMesh.Protocol.Framing;

namespace MoEMesh.Protocol.Transport;

/// <summary>What a <see cref="FrameChannel"/> delivers to its owner (client or server side of a connection).</summary>
internal interface IFrameSink
{
    /// <summary>A whole request or response arrived; the sink owns it.</summary>
    void OnMessage(ReceivedMessage message);

    /// <summary>The peer cancelled a request.</summary>
    void OnCancel(ulong requestId);

    /// <summary>A pong arrived.</summary>
    void OnPong();

    /// <summary>The channel closed; <paramref name="reason"/> says why.</summary>
    void OnClosed(string reason);
}
