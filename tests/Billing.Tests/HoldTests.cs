namespace Billing.Tests;

/// <summary>Holds (issue 11): reserve, capture, void; available = balance + quota left − held (H1); each hold ends once (H2).</summary>
[Collection(ClusterCollection.Name)]
public sealed class HoldTests(ClusterFixture fixture) : BillingTestBase(fixture)
{
    private Task<BillingResult<HoldView>> Place(Guid? project, Guid user, Guid model, long input, long maxOutput, int? ttl = null, Guid? holdId = null) =>
        Usage.PlaceHold(new HoldRequest(holdId ?? Guid.NewGuid(), project, user, model, input, maxOutput, ttl));

    [Fact]
    public async Task ReviewDefect_A_capture_is_counted_in_the_money_metrics_like_a_usage()
    {
        // A cost no other test charges, in whole billionths: the counter records exactly it, whatever fraction of a
        // billionth other charges of the currency carried over.
        var model = await NewModel(987_654.321m, 0m); // 1 input token = 0.987654321
        var user = await NewUser(); // 10
        var charged = new System.Collections.Concurrent.ConcurrentBag<long>();
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == Billing.Diagnostics.BillingMetrics.MeterName && instrument.Name == "billing.cost.charged") l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<long>((_, value, _, _) => charged.Add(value));
        listener.Start();

        var hold = (await Place(null, user, model, 2, 0)).Value!;
        var capture = await Usage.CaptureHold(new HoldCapture(hold.HoldId, 1, 0));

        Assert.True(capture.IsOk, capture.Problem?.Detail);
        Assert.Equal(0.987654321m, capture.Value!.Charged);
        Assert.Contains(987_654_321L, charged);
    }

    [Fact]
    public async Task ReviewDefect_Retried_captures_and_voids_of_ended_holds_are_answered_on_an_account_whose_holds_keep_changing()
    {
        var model = await NewModel(1_000m, 0m); // 0.001 per input token
        var user = await NewUser(); // 10
        var captured = (await Place(null, user, model, 5, 0)).Value!;
        var receipt = await Usage.CaptureHold(new HoldCapture(captured.HoldId, 3, 0));
        Assert.True(receipt.IsOk, receipt.Problem?.Detail);
        var voided = (await Place(null, user, model, 5, 0)).Value!;
        Assert.True((await Usage.VoidHold(voided.HoldId)).IsOk);
        // Expired, then captured late: stored as expired with its capture, which can never change either.
        var late = (await Place(null, user, model, 5, 0, ttl: 1)).Value!;
        await Task.Delay(TimeSpan.FromSeconds(2));
        var lateReceipt = await Usage.CaptureHold(new HoldCapture(late.HoldId, 2, 0));
        Assert.True(lateReceipt.IsOk && lateReceipt.Value!.Late, lateReceipt.Problem?.Detail);

        // Agents keep placing and capturing holds on the same account: its holds change with every write.
        using var stop = new CancellationTokenSource();
        var agents = Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                var hold = await Place(null, user, model, 1, 0);
                if (hold.IsOk) await Usage.CaptureHold(new HoldCapture(hold.Value!.HoldId, 1, 0));
            }
        })).ToArray();

        try
        {
            // Meanwhile the first capture is retried (its answer lost) and the void too. Before, most retries ran out
            // of reads of the stored hold (BillingUnavailableException, a 503) while the account stayed busy.
            for (var i = 0; i < 20; i++)
            {
                var again = await Usage.CaptureHold(new HoldCapture(captured.HoldId, 3, 0));
                Assert.True(again.IsOk, again.Problem?.Detail);
                Assert.Equal(receipt.Value, again.Value);
                var lateAgain = await Usage.CaptureHold(new HoldCapture(late.HoldId, 2, 0));
                Assert.True(lateAgain.IsOk, lateAgain.Problem?.Detail);
                Assert.Equal(lateReceipt.Value, lateAgain.Value);
                var voidedAgain = await Usage.VoidHold(voided.HoldId);
                Assert.True(voidedAgain.IsOk, voidedAgain.Problem?.Detail);
                Assert.Equal(HoldStatus.Voided, voidedAgain.Value!.Status);
            }
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAll(agents);
        }

        Assert.Equal(1, await Scalar("SELECT count(*) FROM usage_record WHERE usage_id = $1", receipt.Value!.UsageId));
    }

    [Fact]
    public async Task Hundred_concurrent_holds_on_a_balance_covering_forty_grant_exactly_forty()
    {
        var model = await NewModel(250_000m, 250_000m); // 0.25 per token
        var user = await NewUser(); // 10.0000 covers 40 holds of 0.25

        var results = await Task.WhenAll(Enumerable.Range(0, 100).Select(_ => Place(null, user, model, 1, 0)));

        Assert.Equal(40, results.Count(r => r.IsOk));
        Assert.All(results.Where(r => !r.IsOk), r =>
        {
            Assert.Equal(BillingStatus.InsufficientBalance, r.Problem!.Status);
            Assert.NotNull(r.Problem.BillingErrorId);
            Assert.Equal(0, r.Problem.MaxAffordableOutputTokens);
        });
        var account = await View(AccountKind.User, user);
        Assert.Equal((10.0000m, 10.00m, 0m), (account.Balance, account.Held, account.Available));
        Assert.Equal(60, await BillingErrorCount(user));
        Assert.Equal(40, await Scalar("SELECT count(*) FROM billing_hold WHERE account_id = $1 AND status = 'active'", user));
    }

    [Fact]
    public async Task Copies_of_a_refused_placement_sent_among_other_refused_placements_store_one_billing_error_and_all_answer_it()
    {
        // Placements refused at the same moment are stored by one statement (ClaimWriter): the copies of one hold id must
        // still claim it once, whether they meet in one statement or follow each other.
        var model = await NewModel(1_000_000m, 1_000_000m); // 1 per token
        var user = await NewUser(balance: 0m);
        var copiedId = Guid.NewGuid();

        var answers = await Task.WhenAll(Enumerable.Range(0, 64).Select(i => Place(null, user, model, 5, 0, holdId: i % 2 == 0 ? copiedId : Guid.NewGuid())));

        Assert.All(answers, a => Assert.Equal(BillingStatus.InsufficientBalance, a.Problem!.Status));
        Assert.Single(answers.Where((_, i) => i % 2 == 0).Select(a => a.Problem!.BillingErrorId).Distinct());
        Assert.Equal(33, await BillingErrorCount(user));
        Assert.Equal(33, await Scalar("SELECT count(*) FROM billing_hold WHERE account_id = $1 AND status = 'refused'", user));
        Assert.Equal(1, await Scalar("SELECT count(*) FROM billing_error WHERE hold_id = $1", copiedId));
        Assert.Equal(66, await Scalar("SELECT count(*) FROM billing_event WHERE scope_id = $1", user)); // balance.depleted + billing_error.created each
    }

    /// <summary>
    /// Found by the bank test: the accounts only see their active holds, so a placement retried after its hold had been
    /// captured was decided again against today's balance: a 402 for a hold that was granted, and a billing error.
    /// </summary>
    [Fact]
    public async Task ReviewDefect_PlacementRetriedAfterItsHoldEndedAnswersTheStoredHoldNotA402()
    {
        var model = await NewModel(1_000_000m, 1_000_000m); // 1 per token
        var user = await NewUser(); // 10
        var holdId = Guid.NewGuid();
        var placed = await Place(null, user, model, 6, 0, holdId: holdId);
        Assert.True(placed.IsOk);
        Assert.True((await Usage.CaptureHold(new HoldCapture(holdId, 6, 0))).IsOk); // balance 4: the hold would not fit now

        var retried = await Place(null, user, model, 6, 0, holdId: holdId);
        var otherBody = await Place(null, user, model, 5, 0, holdId: holdId);

        Assert.True(retried.IsOk, retried.Problem?.Detail);
        Assert.Equal((holdId, HoldStatus.Captured, 6m), (retried.Value!.HoldId, retried.Value.Status, retried.Value.Amount));
        Assert.Equal(BillingStatus.HoldConflict, otherBody.Problem!.Status);
        Assert.Equal(0, await BillingErrorCount(user));
        Assert.Equal(4m, (await View(AccountKind.User, user)).Balance);
    }

    /// <summary>
    /// Review defect: the stored hold was looked up only when both accounts refused for insufficient balance, so a retry
    /// of a placed hold id answered 404 when the project could no longer cover it and the user has no account.
    /// </summary>
    [Fact]
    public async Task ReviewDefect_PlacementRetriedWhenTheUserHasNoAccountAnswersTheStoredHoldNotA404()
    {
        var model = await NewModel(1_000_000m, 1_000_000m); // 1 per token
        var project = await NewProject(); // 20
        var user = Guid.NewGuid(); // never initialised
        var holdId = Guid.NewGuid();
        var placed = await Place(project, user, model, 15, 0, holdId: holdId);
        Assert.True(placed.IsOk, placed.Problem?.Detail);
        Assert.Equal(PayingAccount.Project, placed.Value!.Payer);
        Assert.True((await Usage.CaptureHold(new HoldCapture(holdId, 15, 0))).IsOk); // 5: the hold would not fit now

        var retried = await Place(project, user, model, 15, 0, holdId: holdId);
        var otherBody = await Place(project, user, model, 14, 0, holdId: holdId);

        Assert.True(retried.IsOk, retried.Problem?.Detail);
        Assert.Equal((holdId, HoldStatus.Captured, 15m), (retried.Value!.HoldId, retried.Value.Status, retried.Value.Amount));
        Assert.Equal(BillingStatus.HoldConflict, otherBody.Problem!.Status);
        Assert.Equal(0, await BillingErrorCount(project));
        Assert.Equal(5m, (await View(AccountKind.Project, project)).Balance);
    }

    /// <summary>
    /// Review defect, the same for a price that changed since the hold was placed: the project's currency mismatch (422)
    /// was answered to a retry of a placed hold id instead of its hold (no price: ClockSkewTests).
    /// </summary>
    [Fact]
    public async Task ReviewDefect_PlacementRetriedAfterThePriceChangedAnswersTheStoredHoldNotA422()
    {
        var model = await NewModel(1_000_000m, 1_000_000m); // 1 per token
        var user = await NewUser(); // 10
        var project = await NewProject(creator: user); // 20
        var holdId = Guid.NewGuid();
        Assert.True((await Place(project, user, model, 15, 0, holdId: holdId)).IsOk);
        Assert.True((await Usage.VoidHold(holdId)).IsOk);
        Assert.True((await Grains.GetGrain<IModelPricingGrain>(model).AddPrice(new ModelPriceInput(1_000_000m, 1_000_000m, "EUR", null))).IsOk);

        var inEuros = await Place(project, user, model, 15, 0, holdId: holdId);

        Assert.True(inEuros.IsOk, inEuros.Problem?.Detail);
        Assert.Equal((HoldStatus.Voided, PayingAccount.Project, "USD"), (inEuros.Value!.Status, inEuros.Value.Payer, inEuros.Value.Currency));
        Assert.Equal(BillingStatus.CurrencyMismatch, (await Place(project, user, model, 15, 0)).Problem!.Status); // a new hold id: 422
        Assert.Equal(0, await BillingErrorCount(project));
        Assert.Equal(0, await BillingErrorCount(user));
    }

    /// <summary>
    /// Found by the bank test: a refused placement claimed nothing, so a copy of the same placement still on its way to
    /// the account (the client's retry after a timeout, while the first copy ran) could place the hold after the caller
    /// had been answered 402: money reserved for a hold its caller believes refused. The copy is sent here as the usage
    /// grain sends it, after the refusal and a top-up that would now cover it.
    /// </summary>
    [Fact]
    public async Task ReviewDefect_APlacementCopyArrivingAfterItsRefusalWasAnsweredCannotPlaceTheHold()
    {
        var model = await NewModel(1_000_000m, 1_000_000m); // 1 per token
        var user = await NewUser(); // 10
        var project = await NewProject(creator: user, balance: 0m);
        var holdId = Guid.NewGuid();
        var request = new HoldRequest(holdId, project, user, model, 12, 0);
        var refused = await Usage.PlaceHold(request);
        Assert.Equal(BillingStatus.InsufficientBalance, refused.Problem!.Status);
        Assert.True((await Account(AccountKind.Project, project).Credit(new AccountCredit(20m, HistoryReasons.TopUp, Guid.NewGuid()))).IsOk);

        var lateCopy = await Grains.GetGrain<ITestChargerGrain>(0).PlaceHold(AccountKind.Project, project, new HoldPlacement(request, 12m, "USD", 1_000_000m, 1_000_000m));

        Assert.Equal((BillingStatus.InsufficientBalance, refused.Problem.BillingErrorId), (lateCopy.Problem?.Status, lateCopy.Problem?.BillingErrorId));
        var account = await View(AccountKind.Project, project);
        Assert.Equal((20m, 0m, 20m), (account.Balance, account.Held, account.Available));
        Assert.Equal(0, await Scalar("SELECT count(*) FROM billing_hold WHERE hold_id = $1 AND status <> 'refused'", holdId));
        Assert.Equal(1, await BillingErrorCount(project));
    }

    /// <summary>
    /// The first stored outcome of a hold id answers every copy of its placement, as for a usage id: a refused hold id
    /// stays refused (same billing error, none added) after the account could cover it; a new hold id is placed.
    /// </summary>
    [Fact]
    public async Task A_refused_hold_id_answers_its_refusal_after_a_top_up_and_a_new_hold_id_is_placed()
    {
        var model = await NewModel(1_000_000m, 1_000_000m);
        var user = await NewUser(); // 10
        var holdId = Guid.NewGuid();
        var refused = await Place(null, user, model, 11, 0, holdId: holdId);
        await Account(AccountKind.User, user).Credit(new AccountCredit(5m, HistoryReasons.TopUp, Guid.NewGuid())); // 15

        var retries = await Task.WhenAll(Enumerable.Range(0, 5).Select(_ => Place(null, user, model, 11, 0, holdId: holdId)));
        var otherBody = await Place(null, user, model, 1, 0, holdId: holdId);
        var newId = await Place(null, user, model, 11, 0);

        Assert.Equal(BillingStatus.InsufficientBalance, refused.Problem!.Status);
        Assert.All(retries, r =>
        {
            Assert.Equal((BillingStatus.InsufficientBalance, refused.Problem.BillingErrorId), (r.Problem!.Status, r.Problem.BillingErrorId));
            Assert.Equal(4, r.Problem.MaxAffordableOutputTokens); // how far a new hold could go now: 15 − 11 input
        });
        Assert.Equal(BillingStatus.HoldConflict, otherBody.Problem!.Status);
        Assert.True(newId.IsOk, newId.Problem?.Detail);
        Assert.Equal(1, await BillingErrorCount(user));
        Assert.Equal(BillingStatus.HoldNotFound, (await Usage.GetHold(holdId)).Problem!.Status);
        Assert.Equal(BillingStatus.HoldNotFound, (await Usage.CaptureHold(new HoldCapture(holdId, 1, 0))).Problem!.Status);
        Assert.Equal(BillingStatus.HoldNotFound, (await Usage.VoidHold(holdId)).Problem!.Status);
        var listed = await Grains.GetGrain<IUserGrain>(user).ListHolds(new HoldQuery(null, 50, null));
        Assert.Equal([newId.Value!.HoldId], listed.Value!.Items.Select(h => h.HoldId));
        var account = await View(AccountKind.User, user);
        Assert.Equal((15m, 11m, 4m), (account.Balance, account.Held, account.Available));
    }

    /// <summary>
    /// The other order of the same race: a copy was refused at both accounts while another copy placed the hold; its
    /// refusal's claim meets the hold and stores nothing (no billing error, no event), and the placement answers the hold.
    /// </summary>
    [Fact]
    public async Task A_refusal_claimed_after_its_hold_was_placed_stores_nothing_and_the_placement_answers_the_hold()
    {
        var model = await NewModel(1_000_000m, 1_000_000m);
        var user = await NewUser(); // 10
        var request = new HoldRequest(Guid.NewGuid(), null, user, model, 4, 0);
        var placed = await Usage.PlaceHold(request);
        Assert.True(placed.IsOk, placed.Problem?.Detail);
        await using var dataSource = Npgsql.NpgsqlDataSource.Create(Fixture.ConnectionString);
        var store = new Billing.Storage.HoldStore(dataSource);

        var claimed = await store.ClaimRefusalAsync(new HoldPlacement(request, 4m, "USD", 1_000_000m, 1_000_000m), "user", user, "refused", new { },
            DateTimeOffset.UtcNow, errorId => [new Billing.Events.BillingEventRow(Guid.NewGuid(), "balance.depleted", "user", user, null, errorId, null, "{}", DateTimeOffset.UtcNow)]);
        var again = await Usage.PlaceHold(request);

        Assert.Null(claimed);
        Assert.Equal(0, await BillingErrorCount(user));
        Assert.Equal(0, await Scalar("SELECT count(*) FROM billing_event WHERE scope_id = $1 AND type = 'balance.depleted'", user));
        Assert.Equal((request.HoldId, HoldStatus.Active), (again.Value!.HoldId, again.Value.Status));
        Assert.Equal(6m, (await View(AccountKind.User, user)).Available);
    }

    [Fact]
    public async Task A_hold_and_a_usage_race_for_the_same_money_and_only_one_gets_it()
    {
        var model = await NewModel(1_000_000m, 1_000_000m); // 1 per token
        for (var round = 0; round < 5; round++)
        {
            var user = await NewUser(); // 10
            var hold = Place(null, user, model, 6, 0);
            var usage = Usage.RecordPersonalUsage(new PersonalUsage(Guid.NewGuid(), user, model, 6, 0));
            await Task.WhenAll(hold, usage);

            Assert.Equal(1, new[] { (await hold).IsOk, (await usage).IsOk }.Count(ok => ok));
            var account = await View(AccountKind.User, user);
            Assert.Equal(4m, account.Available);
        }
    }

    [Fact]
    public async Task Usage_balance_checks_and_new_holds_spend_only_what_holds_leave_available()
    {
        var model = await NewModel(1_000_000m, 1_000_000m);
        var user = await NewUser(); // 10
        Assert.True((await Place(null, user, model, 0, 7)).IsOk);

        var usage = await Usage.RecordPersonalUsage(new PersonalUsage(Guid.NewGuid(), user, model, 4, 0));
        var check = await Usage.CheckBalance(new BalanceCheck(null, user, model, 3, 0));
        var tooLarge = await Place(null, user, model, 0, 4);
        var fits = await Usage.RecordPersonalUsage(new PersonalUsage(Guid.NewGuid(), user, model, 3, 0));

        Assert.Equal(BillingStatus.InsufficientBalance, usage.Problem!.Status);
        Assert.Equal((true, 3m), (check.Value!.Sufficient, check.Value.UserAvailable));
        Assert.Equal(3, tooLarge.Problem!.MaxAffordableOutputTokens);
        Assert.True(fits.IsOk);
        var account = await View(AccountKind.User, user);
        Assert.Equal((7m, 7m, 0m), (account.Balance, account.Held, account.Available));
    }

    [Fact]
    public async Task The_payer_is_the_project_when_it_covers_the_whole_amount_else_the_user_never_split()
    {
        var model = await NewModel(1_000_000m, 1_000_000m);
        var project = await NewProject(balance: 5m);
        var user = await NewUser(); // 10

        var byProject = await Place(project, user, model, 2, 3);
        var byUser = await Place(project, user, model, 2, 4); // project has 0 left
        var refusedId = Guid.NewGuid();
        var neither = await Place(project, user, model, 5, 10, holdId: refusedId);

        Assert.Equal((PayingAccount.Project, project, 5m), (byProject.Value!.Payer, byProject.Value.AccountId, byProject.Value.Amount));
        Assert.Equal((PayingAccount.User, user, 6m), (byUser.Value!.Payer, byUser.Value.AccountId, byUser.Value.Amount));
        Assert.Equal(BillingStatus.InsufficientBalance, neither.Problem!.Status);
        Assert.Equal(0, neither.Problem.MaxAffordableOutputTokens); // the project has 0 available, the user 4: not even the 5 input tokens
        var again = await Place(project, user, model, 5, 10, holdId: refusedId);
        Assert.Equal((BillingStatus.InsufficientBalance, neither.Problem.BillingErrorId), (again.Problem!.Status, again.Problem.BillingErrorId));
        Assert.Equal(1, await BillingErrorCount(project)); // a retry stores no second error

        // The fallback capture writes the project's zero-amount marker, as for usage.
        var captured = await Usage.CaptureHold(new HoldCapture(byUser.Value.HoldId, 2, 1));
        Assert.True(captured.IsOk, captured.Problem?.Detail);
        Assert.Equal(PayingAccount.User, captured.Value!.DeductedFrom);
        var marker = (await History(AccountKind.Project, project)).First();
        Assert.Equal((HistoryReasons.AiUsageUserFallback, 0m, captured.Value.UsageId), (marker.Reason, marker.Amount, marker.UsageId));
        var charge = (await History(AccountKind.User, user)).First();
        Assert.Equal((HistoryReasons.AiUsageUserFallback, -3m, byUser.Value.HoldId), (charge.Reason, charge.Amount, charge.HoldId));
    }

    [Fact]
    public async Task A_refused_hold_tells_how_many_output_tokens_one_account_could_cover()
    {
        var model = await NewModel(1_000_000m, 2_000_000m); // input 1, output 2 per token
        var user = await NewUser(); // 10: 3 input + 3 output (9) fits, 4 output (11) does not

        var refused = await Place(null, user, model, 3, 100);
        var retried = await Usage.PlaceHold(new HoldRequest(Guid.NewGuid(), null, user, model, 3, 100));

        Assert.Equal((BillingStatus.InsufficientBalance, 3L), (refused.Problem!.Status, refused.Problem.MaxAffordableOutputTokens));
        Assert.True((await Place(null, user, model, 3, 3)).IsOk);
        Assert.Equal(BillingStatus.InsufficientBalance, retried.Problem!.Status);
    }

    [Fact]
    public async Task The_same_hold_id_answers_with_the_hold_and_another_body_is_a_conflict()
    {
        var model = await NewModel(1_000_000m, 1_000_000m);
        var user = await NewUser();
        var id = Guid.NewGuid();

        var first = await Place(null, user, model, 1, 2, holdId: id);
        var retries = await Task.WhenAll(Enumerable.Range(0, 10).Select(_ => Place(null, user, model, 1, 2, holdId: id)));
        var other = await Place(null, user, model, 1, 3, holdId: id);
        await Usage.CaptureHold(new HoldCapture(id, 1, 1));
        var afterCapture = await Place(null, user, model, 1, 2, holdId: id);
        var otherAfterCapture = await Place(null, user, model, 1, 3, holdId: id);

        Assert.True(first.IsOk);
        Assert.All(retries, r => Assert.Equal(first.Value, r.Value));
        Assert.Equal(BillingStatus.HoldConflict, other.Problem!.Status);
        Assert.Equal(HoldStatus.Captured, afterCapture.Value!.Status);
        Assert.Equal(BillingStatus.HoldConflict, otherAfterCapture.Problem!.Status);
        Assert.Equal((8m, 0m), ((await View(AccountKind.User, user)).Balance, (await View(AccountKind.User, user)).Held));
    }

    [Fact]
    public async Task ReviewDefect_Of_copies_of_a_placement_sent_at_once_only_the_one_that_placed_it_answers_created()
    {
        // The gateway's 201 or 200 comes from Created: copies that meet in the account's queue, or find the hold
        // stored after the first placed it (here the last copy, then a retry later), are copies, never the creator.
        var model = await NewModel(1_000_000m, 1_000_000m);
        var project = await NewProject(); // pays: it covers the hold
        var user = await NewUser();
        var id = Guid.NewGuid();

        var copies = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => Usage.PlaceHoldOnce(new HoldRequest(id, project, user, model, 1, 2))));
        var later = await Usage.PlaceHoldOnce(new HoldRequest(id, project, user, model, 1, 2));
        var viaOldMethod = await Usage.PlaceHold(new HoldRequest(id, project, user, model, 1, 2));

        Assert.All(copies, c => Assert.True(c.IsOk, c.Problem?.Detail));
        Assert.Equal(1, copies.Count(c => c.Value!.Created));
        Assert.All(copies, c => Assert.Equal(copies[0].Value!.Hold, c.Value!.Hold));
        Assert.False(later.Value!.Created);
        Assert.Equal(copies[0].Value!.Hold, viaOldMethod.Value);
        Assert.Equal(3m, (await View(AccountKind.Project, project)).Held);
    }

    [Fact]
    public async Task A_placement_of_an_ended_hold_or_a_refused_id_never_answers_created()
    {
        var model = await NewModel(1_000_000m, 1_000_000m);
        var user = await NewUser(); // 10
        var placedId = Guid.NewGuid();
        var refusedId = Guid.NewGuid();

        Assert.True((await Usage.PlaceHoldOnce(new HoldRequest(placedId, null, user, model, 1, 2))).Value!.Created);
        Assert.True((await Usage.VoidHold(placedId)).IsOk);
        var afterVoid = await Usage.PlaceHoldOnce(new HoldRequest(placedId, null, user, model, 1, 2));
        var refused = await Usage.PlaceHoldOnce(new HoldRequest(refusedId, null, user, model, 1, 100));

        Assert.Equal((HoldStatus.Voided, false), (afterVoid.Value!.Hold.Status, afterVoid.Value.Created));
        Assert.Equal(BillingStatus.InsufficientBalance, refused.Problem!.Status);
        Assert.Equal(BillingStatus.InsufficientBalance, (await Usage.PlaceHoldOnce(new HoldRequest(refusedId, null, user, model, 1, 100))).Problem!.Status);
    }

    [Fact]
    public async Task Capture_below_the_hold_charges_the_cost_and_releases_the_rest()
    {
        var model = await NewModel(1_000_000m, 1_000_000m);
        var user = await NewUser();
        var hold = (await Place(null, user, model, 1, 3)).Value!; // 4

        var receipt = (await Usage.CaptureHold(new HoldCapture(hold.HoldId, 1, 2))).Value!;

        Assert.Equal((3m, 3m, 1m, 0m, 4m, false), (receipt.Cost, receipt.Charged, receipt.Released, receipt.Shortfall, receipt.Held, receipt.Late));
        Assert.Equal((hold.HoldId, 7m), (receipt.UsageId, receipt.BalanceAfter));
        var account = await View(AccountKind.User, user);
        Assert.Equal((7m, 0m, 7m), (account.Balance, account.Held, account.Available));
        Assert.Equal(HoldStatus.Captured, (await Usage.GetHold(hold.HoldId)).Value!.Status);
    }

    [Fact]
    public async Task Capture_equal_to_the_hold_releases_nothing()
    {
        var model = await NewModel(1_000_000m, 1_000_000m);
        var user = await NewUser();
        var hold = (await Place(null, user, model, 1, 3)).Value!;
        var usageId = Guid.NewGuid();

        var receipt = (await Usage.CaptureHold(new HoldCapture(hold.HoldId, 1, 3, usageId))).Value!;

        Assert.Equal((4m, 4m, 0m, 0m, usageId), (receipt.Cost, receipt.Charged, receipt.Released, receipt.Shortfall, receipt.UsageId));
        Assert.Equal(6m, (await View(AccountKind.User, user)).Balance);
    }

    [Fact]
    public async Task Capture_above_the_hold_charges_what_available_covers_and_records_one_shortfall()
    {
        var model = await NewModel(1_000_000m, 1_000_000m);
        var user = await NewUser(); // 10
        var hold = (await Place(null, user, model, 0, 4)).Value!;
        var other = (await Place(null, user, model, 0, 3)).Value!; // stays reserved: 3 of the 10 are not this capture's

        var receipts = await Task.WhenAll(Enumerable.Range(0, 5).Select(_ => Usage.CaptureHold(new HoldCapture(hold.HoldId, 2, 7))));

        var receipt = receipts[0].Value!;
        Assert.All(receipts, r => Assert.Equal(receipt, r.Value));
        Assert.Equal((9m, 7m, 0m, 2m), (receipt.Cost, receipt.Charged, receipt.Released, receipt.Shortfall));
        Assert.NotNull(receipt.ShortfallErrorId);
        var account = await View(AccountKind.User, user);
        Assert.Equal((3m, 3m, 0m), (account.Balance, account.Held, account.Available));
        Assert.Equal(1, await Scalar("SELECT count(*) FROM billing_error WHERE hold_id = $1 AND error_type = 'capture_shortfall'", hold.HoldId));
        Assert.True((await Usage.VoidHold(other.HoldId)).IsOk);
        Assert.Equal(3m, (await View(AccountKind.User, user)).Available);
    }

    [Fact]
    public async Task Capture_and_void_each_happen_once_under_concurrent_retries()
    {
        var model = await NewModel(1_000_000m, 1_000_000m);
        var user = await NewUser();
        var captured = (await Place(null, user, model, 1, 3)).Value!;
        var voided = (await Place(null, user, model, 1, 3)).Value!;

        var captures = await Task.WhenAll(Enumerable.Range(0, 20).Select(i => Usage.CaptureHold(new HoldCapture(captured.HoldId, 1, 1, i % 2 == 0 ? null : Guid.NewGuid()))));
        var voids = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => Usage.VoidHold(voided.HoldId)));
        var captureAfterVoid = await Usage.CaptureHold(new HoldCapture(voided.HoldId, 1, 1));
        var voidAfterCapture = await Usage.VoidHold(captured.HoldId);

        Assert.All(captures, c => Assert.Equal(captures[0].Value, c.Value));
        Assert.All(voids, v => Assert.Equal(HoldStatus.Voided, v.Value!.Status));
        Assert.Equal(BillingStatus.HoldConflict, captureAfterVoid.Problem!.Status);
        Assert.Equal(BillingStatus.HoldConflict, voidAfterCapture.Problem!.Status);
        Assert.Equal(1, await Scalar("SELECT count(*) FROM user_billing_history WHERE hold_id = $1", captured.HoldId));
        Assert.Equal((8m, 0m), ((await View(AccountKind.User, user)).Balance, (await View(AccountKind.User, user)).Held));
    }

    /// <summary>
    /// A usage id answers one usage (I3), also across holds and payers: usage_record's primary key carries it since
    /// migration 0015 dropped billing_hold's own unique index on usage_id.
    /// </summary>
    [Fact]
    public async Task A_capture_with_the_usage_id_of_another_holds_capture_is_a_conflict_and_changes_nothing()
    {
        var model = await NewModel(1_000_000m, 1_000_000m);
        var first = await NewUser();
        var second = await NewUser();
        var firstHold = (await Place(null, first, model, 1, 3)).Value!;
        var secondHold = (await Place(null, second, model, 1, 3)).Value!;
        var sameAccountHold = (await Place(null, first, model, 1, 3)).Value!;
        var usageId = Guid.NewGuid();
        Assert.True((await Usage.CaptureHold(new HoldCapture(firstHold.HoldId, 1, 1, usageId))).IsOk);

        var otherPayer = await Usage.CaptureHold(new HoldCapture(secondHold.HoldId, 1, 2, usageId));
        var samePayer = await Usage.CaptureHold(new HoldCapture(sameAccountHold.HoldId, 1, 2, usageId));

        Assert.Equal(BillingStatus.HoldConflict, otherPayer.Problem?.Status);
        Assert.Equal(BillingStatus.HoldConflict, samePayer.Problem?.Status);
        Assert.Equal((10.0000m, 4m, 6.0000m), await Amounts(second));
        Assert.Equal((8m, 4m, 4m), await Amounts(first));
        Assert.Equal(HoldStatus.Active, (await Usage.GetHold(secondHold.HoldId)).Value!.Status);
        Assert.Equal(1, await Scalar("SELECT count(*) FROM billing_hold WHERE usage_id = $1", usageId));
        var recaptured = await Usage.CaptureHold(new HoldCapture(secondHold.HoldId, 1, 2, Guid.NewGuid()));
        Assert.Equal(3m, recaptured.Value?.Charged);

        async Task<(decimal Balance, decimal Held, decimal Available)> Amounts(Guid user)
        {
            var account = await View(AccountKind.User, user);
            return (account.Balance, account.Held, account.Available);
        }
    }

    [Fact]
    public async Task Unknown_holds_and_bad_input_are_refused_and_change_nothing()
    {
        var model = await NewModel();
        var user = await NewUser();

        Assert.Equal(BillingStatus.HoldNotFound, (await Usage.CaptureHold(new HoldCapture(Guid.NewGuid(), 1, 1))).Problem!.Status);
        Assert.Equal(BillingStatus.HoldNotFound, (await Usage.VoidHold(Guid.NewGuid())).Problem!.Status);
        Assert.Equal(BillingStatus.HoldNotFound, (await Usage.GetHold(Guid.NewGuid())).Problem!.Status);
        Assert.Equal(BillingStatus.InvalidInput, (await Place(null, user, model, -1, 1)).Problem!.Status);
        Assert.Equal(BillingStatus.InvalidInput, (await Place(null, user, model, 1, 1, ttl: 0)).Problem!.Status);
        Assert.Equal(BillingStatus.InvalidInput, (await Place(null, user, model, 1, 1, ttl: 86_401)).Problem!.Status);
        Assert.Equal(BillingStatus.NoPriceInEffect, (await Place(null, user, Guid.NewGuid(), 1, 1)).Problem!.Status);
        Assert.Equal(BillingStatus.AccountNotFound, (await Place(null, Guid.NewGuid(), model, 1, 1)).Problem!.Status);
        var hold = (await Place(null, user, model, 1, 1, ttl: 86_400)).Value!;
        Assert.Equal(BillingStatus.InvalidInput, (await Usage.CaptureHold(new HoldCapture(hold.HoldId, -1, 0))).Problem!.Status);
        Assert.Equal(HoldStatus.Active, (await Usage.GetHold(hold.HoldId)).Value!.Status);
        Assert.Equal(10.0000m, (await View(AccountKind.User, user)).Balance);
    }

    [Fact]
    public async Task Holds_count_a_pro_accounts_quota_as_available()
    {
        var model = await NewModel(1_000_000m, 1_000_000m);
        var user = await NewUser(); // 10
        await Grains.GetGrain<IUserGrain>(user).ChangePlan(new PlanChange(true, 5m));

        var hold = await Place(null, user, model, 0, 15);
        var refused = await Usage.RecordPersonalUsage(new PersonalUsage(Guid.NewGuid(), user, model, 1, 0));
        var receipt = (await Usage.CaptureHold(new HoldCapture(hold.Value!.HoldId, 0, 12))).Value!;

        Assert.Equal(15m, hold.Value.Amount);
        Assert.Equal(BillingStatus.InsufficientBalance, refused.Problem!.Status);
        Assert.Equal((12m, 5m, 3m, 3m), (receipt.Charged, receipt.QuotaUsed, receipt.BalanceAfter, receipt.Released));
        var account = await View(AccountKind.User, user);
        Assert.Equal((3m, 5m, 0m, 3m), (account.Balance, account.MonthUsed, account.Held, account.Available));
    }

    [Fact]
    public async Task Holds_are_listed_per_payer_newest_first_paged_and_filtered()
    {
        var model = await NewModel(1_000_000m, 1_000_000m);
        var user = await NewUser();
        var ids = new List<Guid>();
        for (var i = 0; i < 5; i++) ids.Add((await Place(null, user, model, 0, 1)).Value!.HoldId);
        await Usage.VoidHold(ids[0]);

        var first = (await Grains.GetGrain<IUserGrain>(user).ListHolds(new HoldQuery(null, 3, null))).Value!;
        var second = (await Grains.GetGrain<IUserGrain>(user).ListHolds(new HoldQuery(null, 3, first.NextBefore))).Value!;
        var active = (await Grains.GetGrain<IUserGrain>(user).ListHolds(new HoldQuery(HoldStatus.Active, 10, null))).Value!;

        Assert.Equal(ids.AsEnumerable().Reverse(), first.Items.Concat(second.Items).Select(h => h.HoldId));
        Assert.Null(second.NextBefore);
        Assert.Equal(4, active.Items.Length);
    }
}
