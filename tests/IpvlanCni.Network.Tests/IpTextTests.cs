using System.Net;
using IpvlanCni.Network;

namespace IpvlanCni.Network.Tests;

/// <summary>The one parser of address text follows Go's net.ParseIP / net.ParseCIDR, as the reference plugins read.</summary>
public class IpTextTests
{
    [Theory]
    [InlineData("10.1.1.1", "10.1.1.1")]
    [InlineData("0.0.0.0", "0.0.0.0")]
    [InlineData("255.255.255.255", "255.255.255.255")]
    [InlineData("fd00::1", "fd00::1")]
    [InlineData("fd00:0:0:1::00a", "fd00:0:0:1::a")] // IPv6 groups may be zero-padded in Go too
    [InlineData("::ffff:10.1.2.3", "10.1.2.3")]       // IPv4-mapped is IPv4, as Go's To4
    public void Accepts_what_go_accepts(string text, string expected)
    {
        Assert.True(IpText.TryParseAddress(text, out var address));
        Assert.Equal(IPAddress.Parse(expected), address);
    }

    [Theory]
    [InlineData("010.1.1.1")]   // .NET reads 8.1.1.1 (octal); Go refuses leading zeros
    [InlineData("10.1.1.01")]
    [InlineData("10.1.1")]      // .NET shorthand
    [InlineData("1")]
    [InlineData("10.1.1.256")]
    [InlineData("10.1.1.1.1")]
    [InlineData("fe80::1%eth0")] // zones
    [InlineData("::ffff:010.1.2.3")]
    [InlineData(" 10.1.1.1")]
    [InlineData("")]
    [InlineData("10.1.1.1/24")]
    public void Refuses_what_go_refuses(string text) => Assert.False(IpText.TryParseAddress(text, out _));

    [Theory]
    [InlineData("10.1.2.0/24", true)]
    [InlineData("010.1.2.0/24", false)]
    [InlineData("10.1.2.0/33", false)]
    [InlineData("10.1.2.0/024", true)] // Go's ParseCIDR takes decimal digits of the length as they come
    [InlineData("::ffff:10.0.0.0/120", false)]
    [InlineData("fd00::/64", true)]
    public void Prefixes_follow_the_same_rules(string text, bool valid)
    {
        Assert.Equal(valid, IpText.TryParsePrefix(text, out _));
        Assert.Equal(valid, IpPrefix.TryParse(text, out _));
    }
}
