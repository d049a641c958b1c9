using System.Net;
using IpvlanCni.Network;

namespace IpvlanCni.Ipam.Tests;

public class IpMathTests
{
    [Theory]
    [InlineData("10.0.0.255", "10.0.1.0")]
    [InlineData("255.255.255.255", "0.0.0.0")]
    [InlineData("fd00::ffff", "fd00::1:0")]
    [InlineData("fd00::ffff:ffff:ffff:ffff", "fd00:0:0:1::")]
    public void Next_and_previous_carry_across_bytes(string a, string next)
    {
        Assert.Equal(IPAddress.Parse(next), IpMath.Next(IPAddress.Parse(a)));
        Assert.Equal(IPAddress.Parse(a), IpMath.Previous(IPAddress.Parse(next)));
    }

    [Theory]
    [InlineData("10.1.1.0/24", "10.1.1.255")]
    [InlineData("10.1.0.0/16", "10.1.255.255")]
    [InlineData("fd00::/120", "fd00::ff")]
    [InlineData("fd00::/64", "fd00::ffff:ffff:ffff:ffff")]
    public void Last_address_is_all_host_bits(string prefix, string last) =>
        Assert.Equal(IPAddress.Parse(last), IpMath.LastAddress(IpPrefix.Parse(prefix)));

    [Theory]
    [InlineData("fd00:0:0:0:0:0:0:1", "fd00::1")]
    [InlineData("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1")] // one zero group is not shortened
    [InlineData("2001:0:0:1:0:0:0:1", "2001:0:0:1::1")]          // the longest run wins
    [InlineData("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1")]    // the first of equal runs
    [InlineData("::", "::")]
    [InlineData("::1.2.3.4", "::102:304")]                         // no dotted tail, unlike .NET
    [InlineData("::ffff:10.0.0.1", "10.0.0.1")]                   // mapped is IPv4
    [InlineData("FD00::ABCD", "fd00::abcd")]
    public void Formats_like_go(string text, string expected) =>
        Assert.Equal(expected, IpMath.Format(IPAddress.Parse(text)));

    [Theory]
    [InlineData("10.1.1.1", true)]
    [InlineData("010.1.1.1", false)]
    [InlineData("10.1.1", false)]
    [InlineData("10.1.1.256", false)]
    [InlineData("fe80::1%eth0", false)]
    [InlineData("fd00::1", true)]
    [InlineData("", false)]
    public void Parses_like_go(string text, bool ok) => Assert.Equal(ok, IpMath.TryParse(text, out _));

    [Fact]
    public void Range_contains_only_start_to_end_in_the_subnet()
    {
        var r = AddressRange.Create(IpPrefix.Parse("10.1.1.0/24"), IPAddress.Parse("10.1.1.10"), IPAddress.Parse("10.1.1.20"), null, "r");
        Assert.True(r.Contains(IPAddress.Parse("10.1.1.10")));
        Assert.True(r.Contains(IPAddress.Parse("10.1.1.20")));
        Assert.False(r.Contains(IPAddress.Parse("10.1.1.9")));
        Assert.False(r.Contains(IPAddress.Parse("10.1.1.21")));
        Assert.False(r.Contains(IPAddress.Parse("fd00::10")));
        Assert.Equal(IPAddress.Parse("10.1.1.1"), r.Gateway);
    }

    [Fact]
    public void Defaults_follow_the_reference()
    {
        var v4 = AddressRange.Create(IpPrefix.Parse("10.1.1.0/24"), null, null, null, "r");
        Assert.Equal(("10.1.1.1", "10.1.1.254", "10.1.1.1"), (v4.Start.ToString(), v4.End.ToString(), v4.Gateway.ToString()));
        var v6 = AddressRange.Create(IpPrefix.Parse("fd00::/120"), null, null, null, "r");
        Assert.Equal(("fd00::1", "fd00::ff", "fd00::1"), (IpMath.Format(v6.Start), IpMath.Format(v6.End), IpMath.Format(v6.Gateway)));
    }
}
