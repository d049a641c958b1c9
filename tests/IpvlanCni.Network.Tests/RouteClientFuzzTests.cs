using System.Net;
using System.Net.NetworkInformation;
using CsCheck;
using IpvlanCni.Netlink;
using IpvlanCni.Network.Codecs;

namespace IpvlanCni.Network.Tests;

/// <summary>
/// The route-object decoders behind RouteClient, fed through the real connection loop by a fake kernel: dumps whose
/// messages are random, or real ones with bytes flipped, cut short or lengthened. Only NetlinkDecodeException (or a
/// NetlinkException the bytes spell out) may come out.
/// </summary>
public sealed class RouteClientFuzzTests
{
    static byte[] PayloadOf(NetlinkWriter w)
    {
        try
        {
            return w.Message[NetlinkAlign.MessageHeaderLength..].ToArray();
        }
        finally
        {
            w.Dispose();
        }
    }

    static byte[] KernelPayload(string hex)
    {
        var r = new MessageReader(Convert.FromHexString(hex));
        Assert.True(r.Next());
        return r.Payload.ToArray();
    }

    /// <summary>Well-formed payloads of each object, the seeds that mutations start from.</summary>
    static readonly (NetlinkMessageType Type, byte[] Payload)[] Seeds =
    [
        (NetlinkMessageType.NewLink, KernelPayload(CodecTests.KernelIpvlanLink)),
        (NetlinkMessageType.NewLink, PayloadOf(LinkCodec.Create(new VlanLinkSpec("ens10.7", 2, 7) { Mtu = 1400 }))),
        (NetlinkMessageType.NewAddress, PayloadOf(AddressCodec.Add(new AddressInfo(3, IpPrefix.Parse("10.1.2.3/24"))))),
        (NetlinkMessageType.NewAddress, PayloadOf(AddressCodec.Add(new AddressInfo(3, IpPrefix.Parse("fd00::5/64")) { Flags = AddressFlags.NoDad }))),
        (NetlinkMessageType.NewRoute, PayloadOf(RouteCodec.Add(new RouteInfo(IpPrefix.Parse("0.0.0.0/0")) { Gateway = IPAddress.Parse("10.1.2.1"), LinkIndex = 3, Mtu = 1400 }, replace: false))),
        (NetlinkMessageType.NewRoute, PayloadOf(RouteCodec.Add(new RouteInfo(IpPrefix.Parse("10.9.0.0/16"))
        {
            NextHops = [new NextHop(IPAddress.Parse("10.1.2.1"), 3), new NextHop(IPAddress.Parse("10.1.2.2"), 4) { Weight = 3 }],
        }, replace: false))),
        (NetlinkMessageType.NewNeighbour, PayloadOf(NeighbourCodec.Add(new NeighbourInfo(3, IPAddress.Parse("10.1.2.9"), PhysicalAddress.Parse("02-00-00-00-00-09"))))),
    ];

    /// <summary>A seed with 1-4 bytes overwritten, cut at a random point, or with random bytes appended.</summary>
    static readonly Gen<(NetlinkMessageType Type, byte[] Payload)> Mutated =
        from seed in Gen.Int[0, Seeds.Length - 1]
        from kind in Gen.Int[0, 2]
        from positions in Gen.Int[0, int.MaxValue].Array[1, 4]
        from values in Gen.Byte.Array[4]
        from extra in Gen.Byte.Array[1, 24]
        select (Seeds[seed].Type, Mutate(Seeds[seed].Payload, kind, positions, values, extra));

    static byte[] Mutate(byte[] payload, int kind, int[] positions, byte[] values, byte[] extra)
    {
        var bytes = (byte[])payload.Clone();
        switch (kind)
        {
            case 0:
                for (int i = 0; i < positions.Length; i++)
                    bytes[positions[i] % bytes.Length] = values[i];
                return bytes;
            case 1:
                return bytes[..(positions[0] % bytes.Length)];
            default:
                return [.. bytes, .. extra];
        }
    }

    static readonly Gen<(NetlinkMessageType Type, byte[] Payload)> Random =
        from type in Gen.OneOfConst(NetlinkMessageType.NewLink, NetlinkMessageType.NewAddress, NetlinkMessageType.NewRoute, NetlinkMessageType.NewNeighbour)
        from payload in Gen.Byte.Array[0, 120]
        select (type, payload);

    /// <summary>Lists everything from a fake kernel whose dump replies are these messages.</summary>
    static void ListAll((NetlinkMessageType Type, byte[] Payload)[] messages)
    {
        foreach (var list in new Action<RouteClient>[]
                 {
                     c => c.ListLinks(), c => c.ListAddresses(), c => c.ListRoutes(table: 0), c => c.ListNeighbours(),
                     c => c.TryGetLink("eth0"),
                 })
        {
            var kernel = new ScriptedTransport().OnRequest(r =>
            [
                .. messages.Select(m => NetlinkFrames.Message(m.Type, NetlinkMessageFlags.Multi, r.Sequence, 0x5CE1, m.Payload)),
                NetlinkFrames.Done(r.Sequence, 0x5CE1),
            ]);
            using var client = new RouteClient(kernel);
            try
            {
                list(client);
            }
            catch (NetlinkDecodeException)
            {
            }
            catch (NetlinkException)
            {
            }
        }
    }

    [Fact]
    public void Seeds_decode_cleanly() => ListAll(Seeds);

    [Fact]
    public void Mutated_kernel_replies_only_throw_decode_errors() =>
        Mutated.Array[1, 3].Sample(ListAll, iter: 3_000);

    [Fact]
    public void Random_replies_only_throw_decode_errors() =>
        Gen.OneOf(Random, Mutated).Array[1, 4].Sample(ListAll, iter: 3_000);
}
