using System.Net;
using System.Net.Sockets;
using CsCheck;
using IpvlanCni.Cni;

namespace IpvlanCni.Ipam.Tests;

/// <summary>
/// host-local's range arithmetic over random subnets of both families and any prefix length: a range either parses
/// into one that can only hand out usable addresses, or is refused with a CniException; the round robin offers each
/// usable address of a range set exactly once, never a gateway, a network or an IPv4 broadcast address.
/// </summary>
public sealed class RangeArithmeticPropertyTests
{
    static string Format(UInt128 n, AddressFamily family) => IpMath.Format(IpMath.FromNumber(n, family));

    static UInt128 Mask(int bits, int prefix)
    {
        UInt128 all = bits == 32 ? uint.MaxValue : UInt128.MaxValue;
        return prefix == 0 ? 0 : (all << (bits - prefix)) & all;
    }

    /// <summary>An offset near the interesting edges of a subnet: its start, its end, or anywhere, sometimes outside.</summary>
    static Gen<long?> Offset => Gen.Frequency(
        (2, Gen.Const((long?)null)),
        (3, Gen.Long[-2, 6].Select(o => (long?)o)),
        (3, Gen.Long[-6, 2].Select(o => (long?)(-100_000 + o))), // marker: from the subnet's end
        (1, Gen.Long.Select(o => (long?)o)));

    static string? Address(UInt128 network, UInt128 last, long? offset, AddressFamily family, int bits)
    {
        if (offset is not { } o)
            return null;
        UInt128 top = bits == 32 ? uint.MaxValue : UInt128.MaxValue;
        UInt128 n = o <= -90_000 ? last + (UInt128)(o + 100_000 + 100) - 100 : network + (UInt128)(o + 100) - 100;
        return Format(n & top, family);
    }

    static readonly Gen<(AddressFamily Family, int Prefix, UInt128 Base, bool HostBits, long? Start, long? End, long? Gateway)> RangeInput =
        from v6 in Gen.Bool
        let bits = v6 ? 128 : 32
        from prefix in Gen.Int[0, bits]
        from high in Gen.ULong
        from low in Gen.ULong
        from hostBits in Gen.Frequency((4, Gen.Const(false)), (1, Gen.Const(true)))
        from start in Offset
        from end in Offset
        from gateway in Offset
        select (v6 ? AddressFamily.InterNetworkV6 : AddressFamily.InterNetwork, prefix,
            v6 ? new UInt128(high, low) : low & uint.MaxValue, hostBits, start, end, gateway);

    [Fact]
    public void A_range_parses_to_usable_addresses_only_or_is_refused_with_a_cni_error()
    {
        int parsed = 0, refused = 0;
        RangeInput.Sample(t =>
        {
            int bits = t.Family == AddressFamily.InterNetwork ? 32 : 128;
            UInt128 mask = Mask(bits, t.Prefix), top = bits == 32 ? uint.MaxValue : UInt128.MaxValue;
            UInt128 network = t.Base & mask, last = network | (~mask & top);
            string subnet = $"{Format(t.HostBits ? t.Base : network, t.Family)}/{t.Prefix}";
            var keys = new List<string> { $"\"subnet\":\"{subnet}\"" };
            foreach (var (key, offset) in new[] { ("rangeStart", t.Start), ("rangeEnd", t.End), ("gateway", t.Gateway) })
                if (Address(network, last, offset, t.Family, bits) is { } address)
                    keys.Add($"\"{key}\":\"{address}\"");
            var request = TestNet.Request(TestNet.Config(TestNet.HostLocal("/nonexistent", $"[[{{{string.Join(",", keys)}}}]]")));

            AddressRange range;
            try
            {
                range = ((HostLocalIpam)TestNet.Create(request)).Config.RangeSets.Single().Ranges.Single();
            }
            catch (CniException e)
            {
                Assert.True(e.Code is CniErrorCode.InvalidNetworkConfig or CniErrorCode.DecodeFailure, $"{subnet}: code {e.Code}");
                Interlocked.Increment(ref refused);
                return;
            }
            Interlocked.Increment(ref parsed);
            UInt128 start = IpMath.ToNumber(range.Start), end = IpMath.ToNumber(range.End);
            Assert.False(t.HostBits && t.Base != network, $"{subnet} has host bits but parsed");
            Assert.True(network < start && start <= end && end <= last, $"{subnet}: {range} outside {Format(network, t.Family)}..{Format(last, t.Family)}");
            if (t.Family == AddressFamily.InterNetwork)
                Assert.True(end < last, $"{subnet}: {range} includes the broadcast address");
            if (t.Gateway is null)
                Assert.Equal(Format(network + 1, t.Family), IpMath.Format(range.Gateway));
        }, iter: 20_000);
        // Both outcomes must be common, or the generator tests little.
        Assert.True(parsed > 2_000 && refused > 2_000, $"{parsed} parsed, {refused} refused");
    }

    /// <summary>Up to three ranges in distinct small subnets of one family, with random bounds and gateways.</summary>
    static readonly Gen<(bool V6, (int Prefix, int Start, int Length, int Gateway)[] Ranges, int LastRange, int LastOffset)> SetInput =
        from v6 in Gen.Bool
        from ranges in Gen.Select(Gen.Int[26, 30], Gen.Int[0, 70], Gen.Int[0, 70], Gen.Int[0, 70]).Array[1, 3]
        from lastRange in Gen.Int[-1, 3]
        from lastOffset in Gen.Int[0, 70]
        select (v6, ranges.Select(r => (v6 ? r.Item1 + 96 : r.Item1, r.Item2, r.Item3, r.Item4)).ToArray(), lastRange, lastOffset);

    [Fact]
    public void Round_robin_offers_every_usable_address_of_a_set_once_and_nothing_else() =>
        SetInput.Sample(t =>
        {
            var family = t.V6 ? AddressFamily.InterNetworkV6 : AddressFamily.InterNetwork;
            int bits = t.V6 ? 128 : 32;
            var json = new List<string>();
            var expected = new HashSet<string>();
            var forbidden = new HashSet<string>();
            IPAddress? lastReserved = null;
            for (int i = 0; i < t.Ranges.Length; i++)
            {
                var (prefix, startOffset, length, gatewayOffset) = t.Ranges[i];
                UInt128 size = (UInt128)1 << (bits - prefix);
                UInt128 network = t.V6 ? new UInt128(0xfd00_0000_0000_0000, (ulong)(i + 1) << 16) : (UInt128)(0x0a000000u + ((uint)(i + 1) << 16));
                UInt128 usableEnd = t.V6 ? network + size - 1 : network + size - 2;
                UInt128 start = UInt128.Min(network + 1 + (UInt128)startOffset, usableEnd);
                UInt128 end = UInt128.Min(start + (UInt128)length, usableEnd);
                UInt128 gateway = network + (UInt128)gatewayOffset % size;
                json.Add($$"""{"subnet":"{{Format(network, family)}}/{{prefix}}","rangeStart":"{{Format(start, family)}}","rangeEnd":"{{Format(end, family)}}","gateway":"{{Format(gateway, family)}}"}""");
                for (UInt128 a = start; a <= end; a++)
                    if (a != gateway)
                        expected.Add(Format(a, family));
                forbidden.Add(Format(network, family));
                forbidden.Add(Format(gateway, family));
                if (!t.V6)
                    forbidden.Add(Format(network + size - 1, family));
                if (t.LastRange == i)
                    lastReserved = IpMath.FromNumber(network + (UInt128)t.LastOffset % size, family);
            }
            if (t.LastRange >= t.Ranges.Length)
                lastReserved = IPAddress.Parse(t.V6 ? "fd99::1" : "192.0.2.1"); // in no range: start from the first
            var request = TestNet.Request(TestNet.Config(TestNet.HostLocal("/nonexistent", $"[[{string.Join(",", json)}]]")));
            var set = ((HostLocalIpam)TestNet.Create(request)).Config.RangeSets.Single();

            var offered = HostLocalIpam.Candidates(set, lastReserved).ToList();
            var addresses = offered.Select(c => IpMath.Format(c.Address)).ToList();
            Assert.Equal(addresses.Count, addresses.Distinct().Count());
            Assert.True(expected.SetEquals(addresses), $"offered {string.Join(" ", addresses)}, usable {string.Join(" ", expected)}");
            Assert.DoesNotContain(addresses, forbidden.Contains);
            Assert.All(offered, c => Assert.True(c.Range.Contains(c.Address) && !c.Address.Equals(c.Range.Gateway)));
            if (lastReserved is not null && set.Contains(lastReserved) && offered.Count > 1)
                Assert.NotEqual(lastReserved, offered[0].Address); // the round robin moves on
        }, iter: 2_000);
}
