package main

import "testing"

// TestScheduleInWords: each kind of expression the parser knows, in words,
// with its zone; what has no short wording, or is invalid, as written.
func TestScheduleInWords(t *testing.T) {
	for _, c := range []struct{ expr, tz, want string }{
		{"cron(0 9 * * ? *)", "America/New_York", "every day at 09:00, America/New_York"},
		{"cron(0 9 * * ? *)", "", "every day at 09:00 UTC"},
		{"cron(30 8,17 ? * MON-FRI *)", "Europe/Paris", "every Monday to Friday at 08:30 and 17:30, Europe/Paris"},
		{"cron(0 12 ? * MON,THU *)", "", "every Monday and Thursday at 12:00 UTC"},
		{"cron(0 0 ? * L *)", "", "every Saturday at 00:00 UTC"},
		{"cron(15 10 1 * ? *)", "", "on the 1st of the month at 10:15 UTC"},
		{"cron(0 6 1,15 * ? *)", "", "on the 1st and 15th of the month at 06:00 UTC"},
		{"cron(0 6 1 1,7 ? *)", "", "on the 1st of January and July at 06:00 UTC"},
		{"cron(0 6 11,12,13 * ? *)", "", "on the 11th, 12th and 13th of the month at 06:00 UTC"},
		{"cron(0 6 21,22,23 * ? *)", "", "on the 21st, 22nd and 23rd of the month at 06:00 UTC"},
		{"cron(0 23 L * ? *)", "Asia/Tokyo", "on the last day of the month at 23:00, Asia/Tokyo"},
		{"cron(0 23 LW * ? *)", "", "on the last weekday of the month at 23:00 UTC"},
		{"cron(0 8 15W * ? *)", "", "on the weekday nearest the 15th of the month at 08:00 UTC"},
		{"cron(0 18 ? * 6L *)", "", "on the last Friday of the month at 18:00 UTC"},
		{"cron(0 9 ? * 3#2 *)", "", "on the second Tuesday of the month at 09:00 UTC"},
		{"cron(0 9 * 12 ? *)", "", "every day in December at 09:00 UTC"},
		{"cron(45 * * * ? *)", "", "every hour at minute 45"},
		{"cron(45 * * * ? *)", "Asia/Kolkata", "every hour at minute 45, Asia/Kolkata"},
		{"cron(*/5 * * * ? *)", "Europe/Paris", "every 5 minutes"},
		{"cron(0/15 * ? * MON-FRI *)", "Europe/Paris", "every 15 minutes on Monday to Friday, Europe/Paris"},
		{"cron(* * * * ? *)", "", "every minute"},
		{"cron(0 */6 * * ? *)", "", "every 6 hours at minute 0"},
		{"cron(* 9 * * ? *)", "", "every minute from 09:00 to 09:59"},
		{"cron(0 9 * * ? *)", "Nowhere/Atlantis", "cron(0 9 * * ? *)"}, // no such zone
		{"cron(0 9 * * ? 2027)", "", "cron(0 9 * * ? 2027)"},           // years: as written
		{"cron(7,8,9 1,2 * * ? *)", "", "cron(7,8,9 1,2 * * ? *)"},     // six times a day
		{"cron(3,17 * * * ? *)", "", "cron(3,17 * * * ? *)"},
		{"cron(0 9 1,2,3,4 * ? *)", "", "cron(0 9 1,2,3,4 * ? *)"},
		{"cron(0 9 * *)", "", "cron(0 9 * *)"}, // invalid
		{"rate(5 minutes)", "", "every 5 minutes"},
		{"rate(1 minute)", "", "every minute"},
		{"rate(90 minutes)", "", "every 90 minutes"},
		{"rate(1 hour)", "Europe/Paris", "every hour"},
		{"rate(2 days)", "", "every 2 days"},
		{"rate(5 minute)", "", "rate(5 minute)"}, // invalid
		{"at(2027-01-01T00:00:00)", "", "once at 2027-01-01 00:00 UTC"},
		{"at(2027-03-01T09:30:15)", "Europe/Paris", "once at 2027-03-01 09:30:15, Europe/Paris"},
		{"at(2027-13-01T00:00:00)", "", "at(2027-13-01T00:00:00)"},
		{"every day", "", "every day"},
		{"", "", ""},
	} {
		if got := ScheduleInWords(c.expr, c.tz); got != c.want {
			t.Errorf("ScheduleInWords(%q, %q) = %q, want %q", c.expr, c.tz, got, c.want)
		}
	}
}

// TestScheduleInWordsLegacyHourly: a minuteOfHour timer's expression, as
// the console gets it from Timer.Expression, is every hour at its minute.
func TestScheduleInWordsLegacyHourly(t *testing.T) {
	tm := &Timer{MinuteOfHour: 45}
	if got := ScheduleInWords(tm.Expression(), tm.Timezone); got != "every hour at minute 45" {
		t.Errorf("minuteOfHour 45: %q", got)
	}
}
