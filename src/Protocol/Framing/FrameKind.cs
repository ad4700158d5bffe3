namespace MoEMesh.Protocol.Framing;

/// <summary>What a frame carries.</summary>
public enum FrameKind : byte
{
    /// <summary>A handshake message (body: <c>Handshake</c> protobuf), before anything else.</summary>
    Handshake = 1,

    /// <summary>Part of a request message.</summary>
    Request = 2,

    /// <summary>Part of a response message.</summary>
    Response = 3,

    /// <summary>The caller no longer wants the answer to this request id; empty body.</summary>
    Cancel = 4,

    /// <summary>Keep-alive probe; the body (up to 64 bytes) is echoed in the pong.</summary>
    Ping = 5,

    /// <summary>Answer to a ping.</summary>
    Pong = 6,

    /// <summary>The sender is closing the connection; body: UTF-8 reason.</summary>
    GoAway = 7,
}

/// <summary>Position of a frame within its message.</summary>
[Flags]
public enum FrameFlags : byte
{
    /// <summary>A middle frame.</summary>
    None = 0,

    /// <summary>The first frame of a message: its body starts with the envelope.</summary>
    First = 1,

    /// <summary>The last frame of a message.</summary>
    Last = 2,
}
