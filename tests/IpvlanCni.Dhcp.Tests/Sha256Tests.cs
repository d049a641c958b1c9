using IpvlanCni.Network;
using System.Text;
using IpvlanCni.Dhcp;

namespace IpvlanCni.Dhcp.Tests;

public class Sha256Tests
{
    // FIPS 180-2 appendix B examples, and the empty message.
    [Theory]
    [InlineData("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")]
    [InlineData("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")]
    [InlineData("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")]
    public void Known_answers(string message, string digest) =>
        Assert.Equal(digest, Convert.ToHexStringLower(Sha256.Hash(Encoding.ASCII.GetBytes(message))));

    [Fact]
    public void A_million_a()
    {
        var message = Enumerable.Repeat((byte)'a', 1_000_000).ToArray();
        Assert.Equal("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0", Convert.ToHexStringLower(Sha256.Hash(message)));
    }

    [Fact]
    public void Every_length_around_the_block_boundary_matches_dotnet()
    {
        for (int n = 0; n < 200; n++)
        {
            var data = Enumerable.Range(0, n).Select(i => (byte)(i * 7)).ToArray();
            Assert.Equal(System.Security.Cryptography.SHA256.HashData(data), Sha256.Hash(data));
        }
    }
}
