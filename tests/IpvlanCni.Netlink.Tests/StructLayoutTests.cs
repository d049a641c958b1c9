using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using IpvlanCni.Interop;
using IpvlanCni.Netlink.Kernel;

namespace IpvlanCni.Netlink.Tests;

/// <summary>The blittable headers must match the kernel's layout byte for byte (sizes and offsets from the uapi headers).</summary>
public sealed class StructLayoutTests
{
    [Fact]
    public void Sizes_match_the_kernel()
    {
        Assert.Equal(16, Unsafe.SizeOf<nlmsghdr>());
        Assert.Equal(20, Unsafe.SizeOf<nlmsgerr>());
        Assert.Equal(4, Unsafe.SizeOf<nlattr>());
        Assert.Equal(16, Unsafe.SizeOf<ifinfomsg>());
        Assert.Equal(8, Unsafe.SizeOf<ifaddrmsg>());
        Assert.Equal(12, Unsafe.SizeOf<rtmsg>());
        Assert.Equal(12, Unsafe.SizeOf<ndmsg>());
        Assert.Equal(8, Unsafe.SizeOf<rtnexthop>());
        Assert.Equal(1, Unsafe.SizeOf<netconfmsg>());
        Assert.Equal(12, Unsafe.SizeOf<sockaddr_nl>());
    }

    [Theory]
    [InlineData(typeof(nlmsghdr), nameof(nlmsghdr.nlmsg_type), 4)]
    [InlineData(typeof(nlmsghdr), nameof(nlmsghdr.nlmsg_flags), 6)]
    [InlineData(typeof(nlmsghdr), nameof(nlmsghdr.nlmsg_seq), 8)]
    [InlineData(typeof(nlmsghdr), nameof(nlmsghdr.nlmsg_pid), 12)]
    [InlineData(typeof(nlmsgerr), nameof(nlmsgerr.msg), 4)]
    [InlineData(typeof(ifinfomsg), nameof(ifinfomsg.ifi_type), 2)]
    [InlineData(typeof(ifinfomsg), nameof(ifinfomsg.ifi_index), 4)]
    [InlineData(typeof(ifinfomsg), nameof(ifinfomsg.ifi_flags), 8)]
    [InlineData(typeof(ifinfomsg), nameof(ifinfomsg.ifi_change), 12)]
    [InlineData(typeof(ifaddrmsg), nameof(ifaddrmsg.ifa_scope), 3)]
    [InlineData(typeof(ifaddrmsg), nameof(ifaddrmsg.ifa_index), 4)]
    [InlineData(typeof(rtmsg), nameof(rtmsg.rtm_table), 4)]
    [InlineData(typeof(rtmsg), nameof(rtmsg.rtm_type), 7)]
    [InlineData(typeof(rtmsg), nameof(rtmsg.rtm_flags), 8)]
    [InlineData(typeof(ndmsg), nameof(ndmsg.ndm_ifindex), 4)]
    [InlineData(typeof(ndmsg), nameof(ndmsg.ndm_state), 8)]
    [InlineData(typeof(ndmsg), nameof(ndmsg.ndm_type), 11)]
    [InlineData(typeof(rtnexthop), nameof(rtnexthop.rtnh_hops), 3)]
    [InlineData(typeof(rtnexthop), nameof(rtnexthop.rtnh_ifindex), 4)]
    [InlineData(typeof(sockaddr_nl), nameof(sockaddr_nl.nl_pid), 4)]
    public void Offsets_match_the_kernel(Type type, string field, int offset) =>
        Assert.Equal(offset, (int)Marshal.OffsetOf(type, field));

    [Fact]
    public void Alignment_macros()
    {
        Assert.Equal(16, NetlinkAlign.MessageHeaderLength);
        Assert.Equal(4, NetlinkAlign.AttributeHeaderLength);
        Assert.Equal([0, 4, 4, 4, 4, 8], new[] { 0, 1, 2, 3, 4, 5 }.Select(NetlinkAlign.Attribute));
        Assert.Equal(20, NetlinkAlign.Message(17));
    }
}
