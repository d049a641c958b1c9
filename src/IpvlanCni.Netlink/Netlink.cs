using System.Runtime.CompilerServices;
using IpvlanCni.Netlink.Kernel;

namespace IpvlanCni.Netlink;

/// <summary>The kernel's netlink alignment macros, one to one (linux/netlink.h).</summary>
public static class NetlinkAlign
{
    // #define NLMSG_ALIGNTO 4U
    public const int MessageAlignTo = 4;
    // #define NLA_ALIGNTO 4
    public const int AttributeAlignTo = 4;

    // #define NLMSG_ALIGN(len) ( ((len)+NLMSG_ALIGNTO-1) & ~(NLMSG_ALIGNTO-1) )
    public static int Message(int length) => (length + MessageAlignTo - 1) & ~(MessageAlignTo - 1);

    // #define NLA_ALIGN(len) (((len) + NLA_ALIGNTO - 1) & ~(NLA_ALIGNTO - 1))
    public static int Attribute(int length) => (length + AttributeAlignTo - 1) & ~(AttributeAlignTo - 1);

    // #define NLMSG_HDRLEN ((int) NLMSG_ALIGN(sizeof(struct nlmsghdr)))
    public static readonly int MessageHeaderLength = Message(Unsafe.SizeOf<nlmsghdr>());

    // #define NLA_HDRLEN ((int) NLA_ALIGN(sizeof(struct nlattr)))
    public static readonly int AttributeHeaderLength = Attribute(Unsafe.SizeOf<nlattr>());
}

/// <summary>nlmsg_type values: the control messages (NLMSG_*) and the rtnetlink requests (RTM_*).</summary>
public enum NetlinkMessageType : ushort
{
    Noop = 1,       // NLMSG_NOOP
    Error = 2,      // NLMSG_ERROR
    Done = 3,       // NLMSG_DONE
    Overrun = 4,    // NLMSG_OVERRUN
    NewLink = 16,   // RTM_NEWLINK
    DeleteLink = 17,
    GetLink = 18,
    NewAddress = 20, // RTM_NEWADDR
    DeleteAddress = 21,
    GetAddress = 22,
    NewRoute = 24,  // RTM_NEWROUTE
    DeleteRoute = 25,
    GetRoute = 26,
    NewNeighbour = 28, // RTM_NEWNEIGH
    DeleteNeighbour = 29,
    GetNeighbour = 30,
    NewNetconf = 80, // RTM_NEWNETCONF
    GetNetconf = 82, // RTM_GETNETCONF
}

/// <summary>nlmsg_flags (NLM_F_*). Several bits mean different things for GET, NEW, DELETE and ACK messages.</summary>
[Flags]
public enum NetlinkMessageFlags : ushort
{
    None = 0,
    Request = 0x01,          // NLM_F_REQUEST
    Multi = 0x02,            // NLM_F_MULTI
    Ack = 0x04,              // NLM_F_ACK
    Echo = 0x08,             // NLM_F_ECHO
    DumpInterrupted = 0x10,  // NLM_F_DUMP_INTR
    DumpFiltered = 0x20,     // NLM_F_DUMP_FILTERED
    // GET
    Root = 0x100,            // NLM_F_ROOT
    Match = 0x200,           // NLM_F_MATCH
    Dump = Root | Match,     // NLM_F_DUMP
    // NEW
    Replace = 0x100,         // NLM_F_REPLACE
    Excl = 0x200,            // NLM_F_EXCL
    Create = 0x400,          // NLM_F_CREATE
    Append = 0x800,          // NLM_F_APPEND
    // ACK (NLMSG_ERROR)
    Capped = 0x100,          // NLM_F_CAPPED
    AckTlvs = 0x200,         // NLM_F_ACK_TLVS
}

/// <summary>NLMSGERR_ATTR_*: the extended-ack attributes after an nlmsgerr.</summary>
public enum ExtendedAckAttribute : ushort
{
    Message = 1,     // NLMSGERR_ATTR_MSG
    Offset = 2,      // NLMSGERR_ATTR_OFFS
    Cookie = 3,      // NLMSGERR_ATTR_COOKIE
    Policy = 4,      // NLMSGERR_ATTR_POLICY
    MissingType = 5, // NLMSGERR_ATTR_MISS_TYPE
    MissingNest = 6, // NLMSGERR_ATTR_MISS_NEST
}

/// <summary>One received message: its header fields and a copy of its payload (everything after nlmsghdr).</summary>
public sealed record NetlinkMessage(NetlinkMessageType Type, NetlinkMessageFlags Flags, uint Sequence, uint PortId, byte[] Payload);
