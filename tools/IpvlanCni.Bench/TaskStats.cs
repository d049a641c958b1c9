using System.Buffers.Binary;
using System.Text;
using IpvlanCni.Netlink;

namespace IpvlanCni.Bench;

/// <summary>One exited thread as the kernel's taskstats reports it.</summary>
public sealed record TaskExit(uint Pid, uint ParentPid, string Command, long PeakRssKb);

/// <summary>
/// Peak RSS of every process, from the kernel's per-task accounting (TASKSTATS over generic netlink): each exiting
/// task reports hiwater_rss of its memory, the same counter getrusage's ru_maxrss reads. Unlike wait4 on the
/// plugin, this keeps a process and its children (the reference runs host-local as a child) apart.
/// </summary>
public sealed class TaskStats : IDisposable
{
    const int NETLINK_GENERIC = 16;
    const ushort GENL_ID_CTRL = 0x10;
    const byte CTRL_CMD_GETFAMILY = 3;
    const byte TASKSTATS_CMD_GET = 1;
    const byte TASKSTATS_CMD_NEW = 2;
    // struct taskstats (linux/taskstats.h), offsets unchanged since version 1 of the struct.
    const int CommandOffset = 80, CommandLength = 32, PidOffset = 128, ParentPidOffset = 132, HiwaterRssOffset = 200;

    enum ControlAttribute : ushort { FamilyId = 1, FamilyName = 2 }
    enum TaskstatsCommandAttribute : ushort { RegisterCpuMask = 3, DeregisterCpuMask = 4 }
    enum TaskstatsType : ushort { Pid = 1, Tgid = 2, Stats = 3, AggregatePid = 4, AggregateTgid = 5 }

    static readonly string AllCpus = $"0-{Environment.ProcessorCount - 1}";

    readonly NetlinkSocket _socket;
    readonly ushort _family;
    readonly List<TaskExit> _exits = [];
    readonly Thread _receiver;

    TaskStats(NetlinkSocket socket, ushort family)
    {
        (_socket, _family) = (socket, family);
        _receiver = new Thread(ReceiveLoop) { IsBackground = true, Name = "taskstats" };
    }

    /// <summary>
    /// Subscribes to the exits of tasks on every CPU. Only while memory is measured: every exiting thread wakes the
    /// listener, and the reference's processes have more threads than ours.
    /// </summary>
    public static TaskStats Listen()
    {
        var socket = NetlinkSocket.Open(NETLINK_GENERIC);
        var connection = new NetlinkConnection(socket);
        ushort family = ResolveFamily(connection);
        using (var register = GenericRequest(family, TASKSTATS_CMD_GET, TaskstatsCommandAttribute.RegisterCpuMask, AllCpus))
            connection.Execute(register, "taskstats: register cpumask");
        var stats = new TaskStats(socket, family);
        stats._receiver.Start();
        return stats;
    }

    /// <summary>Unsubscribes; the receiver ends with the socket.</summary>
    public void Dispose()
    {
        using (var deregister = GenericRequest(_family, TASKSTATS_CMD_GET, TaskstatsCommandAttribute.DeregisterCpuMask, AllCpus))
            _socket.Send(deregister.Message);
        _socket.Dispose();
    }

    /// <summary>Exits seen so far; wait a moment after a process ends, its report arrives asynchronously.</summary>
    public List<TaskExit> Snapshot()
    {
        lock (_exits)
            return [.. _exits];
    }

    static ushort ResolveFamily(NetlinkConnection connection)
    {
        using var request = GenericRequest(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, ControlAttribute.FamilyName, "TASKSTATS");
        foreach (var reply in connection.Execute(request, "taskstats: resolve family"))
        {
            var attributes = new AttributeReader(reply.Payload.AsSpan(4));
            while (attributes.Next())
                if (attributes.TypeAs<ControlAttribute>() == ControlAttribute.FamilyId)
                    return attributes.GetUInt16();
        }
        throw new InvalidOperationException("the kernel has no TASKSTATS generic netlink family (CONFIG_TASKSTATS)");
    }

    /// <summary>nlmsghdr + genlmsghdr {cmd, version 1, reserved} + one string attribute.</summary>
    static NetlinkWriter GenericRequest<T>(ushort family, byte command, T attribute, string value) where T : unmanaged, Enum
    {
        var writer = new NetlinkWriter((NetlinkMessageType)family, 0);
        var header = writer.Reserve(4);
        header[0] = command;
        header[1] = 1;
        writer.PutString(attribute, value);
        return writer;
    }

    void ReceiveLoop()
    {
        var buffer = new byte[64 * 1024];
        while (true)
        {
            int length;
            try
            {
                length = _socket.Receive(buffer, peek: false);
            }
            catch (Exception e) when (e is ObjectDisposedException or IpvlanCni.Interop.SystemCallException)
            {
                return; // disposed
            }
            var messages = new MessageReader(buffer.AsSpan(0, Math.Min(length, buffer.Length)));
            while (messages.Next())
            {
                if (messages.Payload.Length < 4 || messages.Payload[0] != TASKSTATS_CMD_NEW)
                    continue;
                var attributes = new AttributeReader(messages.Payload[4..]);
                while (attributes.Next())
                {
                    // Per task (AGGR_PID); the thread group's total (AGGR_TGID) repeats the last thread's memory.
                    if (attributes.TypeAs<TaskstatsType>() != TaskstatsType.AggregatePid)
                        continue;
                    var nested = attributes.GetNested();
                    while (nested.Next())
                        if (nested.TypeAs<TaskstatsType>() == TaskstatsType.Stats)
                            Record(nested.Value);
                }
            }
        }
    }

    void Record(ReadOnlySpan<byte> stats)
    {
        if (stats.Length < HiwaterRssOffset + 8)
            return;
        var command = stats.Slice(CommandOffset, CommandLength);
        int end = command.IndexOf((byte)0);
        var exit = new TaskExit(
            BinaryPrimitives.ReadUInt32LittleEndian(stats[PidOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(stats[ParentPidOffset..]),
            Encoding.UTF8.GetString(end < 0 ? command : command[..end]),
            (long)BinaryPrimitives.ReadUInt64LittleEndian(stats[HiwaterRssOffset..]));
        lock (_exits)
            _exits.Add(exit);
    }
}
