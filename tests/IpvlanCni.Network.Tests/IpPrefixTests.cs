using System.Net;
using IpvlanCni.Network;

namespace IpvlanCni.Network.Tests;

public class IpPrefixTests
{
    [Theory]
    [InlineData("10.1.1.5/24", "10.1.1.5", 24, "10.1.1.0/24")]
    [InlineData("192.168.0.1/32", "192.168.0.1", 32, "192.168.0.1/32")]
    [InlineData("0.0.0.0/0", "0.0.0.0", 0, "0.0.0.0/0")]
    [InlineData("fd00::17/64", "fd00::17", 64, "fd00::/64")]
    [InlineData("2001:db8::1:2/127", "2001:db8::1:2", 127, "2001:db8::1:2/127")]
    public void Parses_and_masks(string text, string address, int length, string network)
    {
        var prefix = IpPrefix.Parse(text);
        Assert.Equal(IPAddress.Parse(address), prefix.Address);
        Assert.Equal(length, prefix.PrefixLength);
        Assert.Equal(network, prefix.Network.ToString());
        Assert.True(prefix.Contains(prefix.Address));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("10.1.1.5")]
    [InlineData("10.1.1.5/")]
    [InlineData("/24")]
    [InlineData("10.1.1.5/33")]
    [InlineData("10.1/8")]
    [InlineData("10.1.1.5/-1")]
    [InlineData("10.1.1.5/ 4")]
    [InlineData("fd00::1/129")]
    [InlineData("fe80::1%eth0/64")]
    [InlineData("not-an-ip/24")]
    public void Rejects_what_is_not_a_cidr(string? text) => Assert.False(IpPrefix.TryParse(text, out _));

    [Fact]
    public void Contains_respects_family_and_mask()
    {
        var prefix = IpPrefix.Parse("10.1.0.0/16");
        Assert.True(prefix.Contains(IPAddress.Parse("10.1.255.255")));
        Assert.False(prefix.Contains(IPAddress.Parse("10.2.0.0")));
        Assert.False(prefix.Contains(IPAddress.Parse("::ffff:10.1.0.1")));
    }
}
