using System.Globalization;
using Billing.Testing;
using Xunit.Abstractions;

namespace Billing.Properties.Tests;

/// <summary>
/// Runs tests/Billing.Bank (2 silos, the HTTP gateway, a throwaway PostgreSQL, faults) for a bounded time and
/// asserts it found no violation. The seed is printed; BANK_SEED / BANK_SECONDS override it and the duration.
/// </summary>
public class BankTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Bank_test_keeps_every_invariant_under_faults()
    {
        var seed = int.TryParse(Environment.GetEnvironmentVariable("BANK_SEED"), out var s) ? s : Random.Shared.Next(1, 1_000_000);
        var seconds = int.TryParse(Environment.GetEnvironmentVariable("BANK_SECONDS"), out var d) ? d : 45;
        output.WriteLine($"bank seed {seed}, {seconds}s (replay: dotnet run --project tests/Billing.Bank -c Release -- --seed {seed} --seconds {seconds})");
        Console.WriteLine($"bank seed {seed}, {seconds}s");

        // The gateway is required (--transport http): the run must not quietly become an in-cluster run.
        var (exit, text) = await RunBankAsync(seconds, "--seed", seed.ToString(CultureInfo.InvariantCulture),
            "--seconds", seconds.ToString(CultureInfo.InvariantCulture), "--transport", "http");
        Assert.True(exit == 0, $"bank failed (seed {seed}, exit {exit}):\n{text}");
        Assert.Contains("transport gateway HTTP", text);
    }

    /// <summary>
    /// Defect 12: the bank's default transport fell back to an Orleans client when the gateway did not start, so the
    /// bank passed without ever exercising the gateway. Now a gateway that cannot start (or is not built) fails the run.
    /// </summary>
    [Fact]
    public async Task ReviewDefect12_BankFailsWhenTheGatewayCannotStart()
    {
        var folder = Directory.CreateTempSubdirectory("bank-broken-gateway-");
        try
        {
            // A gateway that cannot start: its dll is not an assembly, so `dotnet` exits at once.
            var broken = Path.Combine(folder.FullName, "Billing.Client.dll");
            await File.WriteAllTextAsync(broken, "not an assembly");
            var (exit, text) = await RunBankAsync(5, "--seed", "12", "--seconds", "5", "--gateway-dll", broken, "--logs", Path.Combine(folder.FullName, "logs"));
            Assert.True(exit != 0, $"the bank passed although its gateway could not start:\n{text}");
            Assert.Contains("gateway not ready", text);
            Assert.DoesNotContain("FALLING BACK", text);

            // A gateway that is not built at all: refused before anything starts.
            var missing = Path.Combine(folder.FullName, "missing", "Billing.Client.dll");
            (exit, text) = await RunBankAsync(5, "--seed", "12", "--seconds", "5", "--gateway-dll", missing, "--logs", Path.Combine(folder.FullName, "logs2"));
            Assert.True(exit != 0, $"the bank passed without a built gateway:\n{text}");
            Assert.Contains("gateway not built", text);
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    private async Task<(int ExitCode, string Output)> RunBankAsync(int seconds, params string[] args)
    {
        var root = SqlParameterisationTests.RepoRoot();
        var config = AppContext.BaseDirectory.Contains("/Debug/", StringComparison.Ordinal) ? "Debug" : "Release";
        var dll = Path.Combine(root, "tests", "Billing.Bank", "bin", config, "net10.0", "Billing.Bank.dll");
        Assert.True(File.Exists(dll), $"{dll} is not built");

        await using var bank = ChildProcess.StartDotnet("bank", dll, args);
        // Load + recovery + replay + checks: bounded well under 3 minutes for 45 s of load.
        var finished = await bank.WaitForExitAsync(TimeSpan.FromSeconds(seconds + 135));
        if (!finished) bank.Kill();
        var text = bank.Output + (finished ? "" : $"bank did not finish within {seconds + 135}s: killed");
        output.WriteLine(text);
        return (bank.ExitCode ?? -1, text);
    }
}
