using System.Buffers.Binary;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace MoEMesh.Node.Localnet.Wan;

/// <summary>
/// One netfilter queue of the network namespace this process runs in, spoken to over netlink
/// (nfnetlink_queue): the kernel hands over each packet an <c>iptables ... -j NFQUEUE</c> rule sends
/// here, and holds it until it is given a verdict. Only packet ids travel (copy mode "meta"), and GSO
/// packets arrive whole. .NET has no netlink sockets, so the socket is made with libc and wrapped.
/// Netlink headers are in the machine's byte order (little-endian on x64 and arm64, what this is built
/// for), nfnetlink_queue's fields in network order.
/// </summary>
internal sealed class NetfilterQueue : IDisposable
{
    private const int AfNetlink = 16, SockRaw = 3, SockCloexec = 0x80000, NetlinkNetfilter = 12, SolSocket = 1, SoRcvbufforce = 33, SolNetlink = 270, NetlinkNoEnobufs = 5;
    private const ushort NlmFRequest = 1, NlmFAck = 4, NlmsgError = 2;
    private const ushort QueueSubsystem = 3 << 8, MsgPacket = 0, MsgVerdict = 1, MsgConfig = 2;
    private const ushort CfgCmd = 1, CfgParams = 2, CfgQueueMaxLen = 3, CfgMask = 4, CfgFlags = 5, PacketHeader = 1, VerdictHeader = 2;
    private const byte CmdBind = 1, CopyMeta = 1;
    private const uint FlagGso = 4, Drop = 0, Accept = 1;
    private const int HeaderBytes = 16 + 4; // nlmsghdr + nfgenmsg

    private readonly Socket _socket;
    private readonly ushort _number;
    private readonly byte[] _buffer = new byte[1 << 16];
    private readonly List<uint> _pending = [];
    private uint _sequence;

    private NetfilterQueue(Socket socket, ushort number)
    {
        _socket = socket;
        _number = number;
    }

    /// <summary>Binds queue <paramref name="number"/> (at most <paramref name="maxLength"/> packets waiting for a verdict).</summary>
    /// <exception cref="LocalnetException">A netlink socket cannot be made or bound here, or the kernel refused the queue.</exception>
    public static NetfilterQueue Open(ushort number, uint maxLength)
    {
        int fd = NativeSocket(AfNetlink, SockRaw | SockCloexec, NetlinkNetfilter);
        if (fd < 0) throw new LocalnetException($"a netlink socket cannot be made ({Marshal.GetLastPInvokeErrorMessage()}); the link needs Linux with nfnetlink_queue, and root.");
        var address = new byte[12]; // sockaddr_nl: family, pad, pid 0 (the kernel picks), groups 0
        BinaryPrimitives.WriteUInt16LittleEndian(address, AfNetlink);
        if (NativeBind(fd, address, address.Length) != 0)
        {
            string error = Marshal.GetLastPInvokeErrorMessage();
            NativeClose(fd);
            throw new LocalnetException($"the netlink socket cannot be bound ({error}).");
        }
        var queue = new NetfilterQueue(new Socket(new SafeSocketHandle(fd, ownsHandle: true)), number);
        try
        {
            // Room for bursts (beyond rmem_max: the link runs as root), and no ENOBUFS when it overflows anyway.
            queue._socket.SetRawSocketOption(SolSocket, SoRcvbufforce, BitConverter.GetBytes(8 << 20));
            queue._socket.SetRawSocketOption(SolNetlink, NetlinkNoEnobufs, BitConverter.GetBytes(1));
            queue.Send(MsgConfig, NlmFAck, Attribute(CfgCmd, [CmdBind, 0, 0, 0]));
            queue.Send(MsgConfig, NlmFAck, [.. Attribute(CfgParams, [.. BigEndian(0), CopyMeta]), .. Attribute(CfgQueueMaxLen, BigEndian(maxLength)),
                .. Attribute(CfgMask, BigEndian(FlagGso)), .. Attribute(CfgFlags, BigEndian(FlagGso))]);
            // Both acknowledged (or refused) before the queue is used; packets that come meanwhile wait in _pending.
            queue._socket.ReceiveTimeout = 5000;
            var errors = new List<int>();
            for (int acks = 0; acks < 2;)
            {
                acks += Parse(queue._buffer.AsSpan(0, queue._socket.Receive(queue._buffer)), queue._pending, errors);
                if (errors.Count > 0)
                    throw new LocalnetException($"the kernel refused netfilter queue {number} (errno {errors[0]}{(errors[0] == 1 ? ": another process has bound it, or this one may not" : "")}).");
            }
            queue._socket.ReceiveTimeout = 0;
            return queue;
        }
        catch (SocketException e)
        {
            queue.Dispose();
            throw new LocalnetException($"netfilter queue {number} cannot be set up ({e.Message}).");
        }
        catch
        {
            queue.Dispose();
            throw;
        }
    }

    /// <summary>Waits for the next packets and adds their ids to <paramref name="ids"/>.</summary>
    public async ValueTask ReceiveAsync(List<uint> ids, CancellationToken cancellationToken)
    {
        if (_pending.Count > 0)
        {
            ids.AddRange(_pending);
            _pending.Clear();
            return;
        }
        // An error now answers a verdict (one for a packet the kernel has flushed, say): nothing to do about it.
        Parse(_buffer.AsSpan(0, await _socket.ReceiveAsync(_buffer, SocketFlags.None, cancellationToken)), ids, []);
    }

    /// <summary>Lets packet <paramref name="id"/> go on, or drops it.</summary>
    public void Verdict(uint id, bool accept) => Send(MsgVerdict, 0, VerdictAttribute(id, accept));

    public void Dispose() => _socket.Dispose();

    /// <summary>
    /// Reads a datagram from the kernel: adds the ids of the packets in it to <paramref name="ids"/> and the
    /// errno of each error to <paramref name="errors"/>; returns how many acknowledgements (errors included) it held.
    /// </summary>
    internal static int Parse(ReadOnlySpan<byte> datagram, List<uint> ids, List<int> errors)
    {
        int acks = 0;
        while (datagram.Length >= HeaderBytes)
        {
            int length = (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(datagram), (uint)datagram.Length);
            if (length < HeaderBytes) break;
            var message = datagram[..length];
            ushort type = BinaryPrimitives.ReadUInt16LittleEndian(message[4..]);
            if (type == NlmsgError)
            {
                acks++;
                if (BinaryPrimitives.ReadInt32LittleEndian(message[16..]) is var error and not 0) errors.Add(-error);
            }
            else if (type == (QueueSubsystem | MsgPacket) && PacketId(message[HeaderBytes..]) is { } id)
            {
                ids.Add(id);
            }
            datagram = datagram[Math.Min(Aligned(length), datagram.Length)..];
        }
        return acks;
    }

    /// <summary>A netlink message of nfnetlink_queue: header, nfgenmsg for queue <paramref name="queue"/>, then <paramref name="attributes"/>.</summary>
    internal static byte[] Message(ushort type, ushort flags, uint sequence, ushort queue, ReadOnlySpan<byte> attributes)
    {
        var message = new byte[HeaderBytes + attributes.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(message, (uint)message.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(message.AsSpan(4), (ushort)(QueueSubsystem | type));
        BinaryPrimitives.WriteUInt16LittleEndian(message.AsSpan(6), (ushort)(NlmFRequest | flags));
        BinaryPrimitives.WriteUInt32LittleEndian(message.AsSpan(8), sequence);
        // Bytes 12-15: the sender's port id, 0 (the kernel fills it). nfgenmsg: family AF_UNSPEC, version 0, the queue in network order.
        BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(18), queue);
        attributes.CopyTo(message.AsSpan(HeaderBytes));
        return message;
    }

    /// <summary>The verdict attribute: verdict and packet id, both in network order.</summary>
    internal static byte[] VerdictAttribute(uint id, bool accept) => Attribute(VerdictHeader, [.. BigEndian(accept ? Accept : Drop), .. BigEndian(id)]);

    private static uint? PacketId(ReadOnlySpan<byte> attributes)
    {
        while (attributes.Length >= 4)
        {
            ushort length = BinaryPrimitives.ReadUInt16LittleEndian(attributes);
            ushort type = (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(attributes[2..]) & 0x3fff);
            if (length < 4 || length > attributes.Length) return null;
            if (type == PacketHeader && length >= 8) return BinaryPrimitives.ReadUInt32BigEndian(attributes[4..]);
            attributes = attributes[Math.Min(Aligned(length), attributes.Length)..];
        }
        return null;
    }

    private void Send(ushort type, ushort flags, byte[] attributes)
    {
        var message = Message(type, flags, Interlocked.Increment(ref _sequence), _number, attributes);
        try
        {
            lock (_socket) _socket.Send(message);
        }
        catch (SocketException e)
        {
            throw new LocalnetException($"netfilter queue {_number} does not take messages any more ({e.Message}).");
        }
    }

    private static byte[] Attribute(ushort type, byte[] payload)
    {
        var attribute = new byte[Aligned(4 + payload.Length)];
        BinaryPrimitives.WriteUInt16LittleEndian(attribute, (ushort)(4 + payload.Length));
        BinaryPrimitives.WriteUInt16LittleEndian(attribute.AsSpan(2), type);
        payload.CopyTo(attribute, 4);
        return attribute;
    }

    private static byte[] BigEndian(uint value)
    {
        var bytes = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, value);
        return bytes;
    }

    private static int Aligned(int length) => (length + 3) & ~3;

    [DllImport("libc", EntryPoint = "socket", SetLastError = true)]
    private static extern int NativeSocket(int domain, int type, int protocol);

    [DllImport("libc", EntryPoint = "bind", SetLastError = true)]
    private static extern int NativeBind(int fd, byte[] address, int length);

    [DllImport("libc", EntryPoint = "close", SetLastError = true)]
    private static extern int NativeClose(int fd);
}
